import { quote } from '../../ssh/quote.js';
import type { HostConnection } from '../../ssh/connection.js';
import type { Logger } from '../../runner/log.js';
import type { PlanState } from '../types.js';
import { sameCore } from '../../containerd/version.js';
import { parseCtrVersion } from '../../containerd/parse.js';
import { BIN, CONTAINERD_STATE, INSTALL_RECORD, INSTALL_STATS } from './settings.js';
import { STAMP_DIR } from '../lib/systemd.js';

export const INSTALL_RAN = 'containerd.installRan';
export const STAMP_BEFORE = 'containerd.stampBefore';

/**
 * Arms the rollback of a containerd change on one host: when anything fails after the first
 * change (verification included), the binaries kept in prev/, the files replaced this run
 * (their .hoist-prev copies) and the record go back, containerd restarts, and the old version must
 * answer. Only an upgrade has something to return to; a fresh install is left for a rerun.
 */
export function armContainerdRollback(state: PlanState, previousVersion: string | undefined): void {
  if (state.rollback || !previousVersion) return;
  state.rollback = async (conn: HostConnection, log: Logger) => {
    const files = [...state.appliedFiles];
    // The stamp the old daemon ran with: the restored files are those it was started from.
    const stamp = state.data.get(STAMP_BEFORE) as string | undefined;
    const script = `set -uo pipefail
cd ${CONTAINERD_STATE}
${state.data.get(INSTALL_RAN) ? `src=prev; complete=1
if [ -d prev.new ]; then src=prev.new; complete=0; fi
if [ -d "$src" ]; then (cd "$src" && find . -type f -o -type l | sed 's|^\\./||' | while IFS= read -r f; do cp -a "$f" "/$f.hoist-new" && mv -f "/$f.hoist-new" "/$f"; done); fi
if [ "$complete" = 1 ] && [ -f prev.json ]; then cp -a prev.json ${INSTALL_RECORD}; [ -f prev.stat ] && cp -a prev.stat ${INSTALL_STATS}; fi
rm -rf prev.new` : ''}
${files.map(([p, existed]) => (existed ? `[ -f ${quote(`${p}.hoist-prev`)} ] && mv -f ${quote(`${p}.hoist-prev`)} ${quote(p)}` : `rm -f ${quote(p)}`)).join('\n')}
systemctl daemon-reload
systemctl restart containerd${stamp ? ` && printf '%s\\n' ${quote(stamp)} > ${quote(`${STAMP_DIR}/containerd.service`)}` : ''}`;
    log.log(conn.endpoint.name, `rolling back to containerd ${previousVersion}`);
    const r = await conn.exec(script, { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`restoring ${previousVersion} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const v = await conn.exec(`${BIN.ctr} version`);
      const server = parseCtrVersion(v.stdout + v.stderr).server;
      if (server && sameCore(server.version, previousVersion)) return `rolled back to containerd ${previousVersion}, which is running again`;
      if (Date.now() > deadline) throw new Error(`rolled back to ${previousVersion}, but containerd does not answer as ${previousVersion} (${server?.version ?? 'no server'})`);
      await new Promise((res) => setTimeout(res, 1000));
    }
  };
}
