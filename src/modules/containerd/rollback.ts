import { quote } from '../../ssh/quote.js';
import type { Connection } from '../../tasks/connection.js';
import type { PlanState } from '../../tasks/types.js';
import { STAMP_DIR, SWEEP_TEMPS, TEMP_JOURNAL, tempBeside } from '../../host-paths.js';
import { sameCore } from './version.js';
import { parseCtrVersion } from './parse.js';
import { BIN, CONTAINERD_STATE, INSTALL_RECORD, INSTALL_STATS } from './paths.js';
import { stampBefore } from './slots.js';
import { HostError } from '../../util/errors.js';

/**
 * A containerd rollback, composed by the tasks that change a host: each restores what it replaced,
 * and one restart, added by the first of them and so run last, brings the old daemon back and
 * waits until it answers as the old version. Only an upgrade has something to return to; a fresh
 * install is left for a rerun.
 */

/** The restart that ends every containerd rollback; added once per host, before any restore step, so it runs after them all. */
function armRestart(state: PlanState, previous: string): void {
  state.rollback.once('containerd.restart', async (conn, log) => {
    // The stamp the old daemon ran with: the restored files are those it was started from.
    const stamp = stampBefore.peek(state);
    log.log(conn.endpoint.name, `rolling back to containerd ${previous}`);
    const r = await conn.exec(
      `systemctl daemon-reload\nsystemctl restart containerd${stamp ? ` && printf '%s\\n' ${quote(stamp)} > ${quote(`${STAMP_DIR}/containerd.service`)}` : ''}`,
      { timeoutMs: 300_000 },
    );
    if (r.code !== 0) throw new HostError(`restoring ${previous} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    return waitForVersion(conn, previous);
  });
}

async function waitForVersion(conn: Connection, previous: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await conn.exec(`${BIN.ctr} version`);
    const server = parseCtrVersion(v.stdout + v.stderr).server;
    if (server && sameCore(server.version, previous))
      return `rolled back to containerd ${previous}, which is running again (ctr version: server ${server.version})`;
    if (Date.now() > deadline)
      throw new HostError(`rolled back to ${previous}, but containerd does not answer as ${previous} (${server?.version ?? 'no server'})`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** The binaries kept in prev/ and the install record go back, if the install step ran. */
export function armBinariesRollback(state: PlanState, previous: string | undefined, installRan: () => boolean): void {
  if (!previous) return;
  armRestart(state, previous);
  state.rollback.add(async (conn) => {
    if (!installRan()) return undefined;
    const r = await conn.exec(
      `set -uo pipefail
cd ${CONTAINERD_STATE}
src=prev; complete=1
if [ -d prev.new ]; then src=prev.new; complete=0; fi
${SWEEP_TEMPS}
if [ -d "$src" ]; then (cd "$src" && find . -type f -o -type l | sed 's|^\\./||' | while IFS= read -r f; do dest="/$f"; tmp=${tempBeside('dest')}; printf '%s\\n' "$tmp" >> ${TEMP_JOURNAL}; cp -a "$f" "$tmp" && mv -f "$tmp" "$dest"; done); fi
if [ "$complete" = 1 ] && [ -f prev.json ]; then cp -a prev.json ${INSTALL_RECORD}; [ -f prev.stat ] && cp -a prev.stat ${INSTALL_STATS}; fi
rm -rf prev.new`,
      { timeoutMs: 300_000 },
    );
    if (r.code !== 0) throw new HostError(`restoring the binaries of ${previous} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    return undefined;
  });
}

/** The files among `paths` this run replaced go back to their .hoist-prev copies (or away, if they are new). */
export function armFilesRollback(state: PlanState, previous: string | undefined, paths: readonly string[]): void {
  if (!previous) return;
  armRestart(state, previous);
  state.rollback.add(async (conn) => {
    const applied = paths.filter((p) => state.appliedFiles.has(p));
    if (applied.length === 0) return undefined;
    const script = applied
      .map((p) =>
        state.appliedFiles.get(p) ? `if [ -f ${quote(`${p}.hoist-prev`)} ]; then mv -f ${quote(`${p}.hoist-prev`)} ${quote(p)}; fi` : `rm -f ${quote(p)}`,
      )
      .join('\n');
    const r = await conn.exec(script);
    if (r.code !== 0) throw new HostError(`restoring ${applied.join(', ')} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    return undefined;
  });
}
