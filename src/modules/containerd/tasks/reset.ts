import { s } from '../../../util/schema.js';
import { quote } from '../../../ssh/quote.js';
import { containerdTask } from '../task.js';
import type { Action } from '../../../tasks/types.js';
import { ARTIFACT_DIR, STAGING_DIR, STAMP_DIR, SWEEP_TEMPS, TEMP_JOURNAL } from '../../../host-paths.js';
import { hostPathProblem } from '../../../util/path-guard.js';
import { registryPaths } from '../render.js';
import { OWN_DIRS } from '../config/validate.js';
import { dataDirFate, removeDataDirScript } from '../../../tasks/lib/data-dirs.js';
import { CONTAINERD_DATA_ENTRIES } from '../data-dirs.js';
import { REGISTRY_LIST, CONFIG_FILE, CONTAINERD_STATE, CRICTL_YAML, INSTALL_STATS, UNIT_FILE, CREATED_DIRS, BIN } from '../paths.js';
import { bookkeepingScript, BOOKKEEPING_PROBE, parseBookkeeping, parseWorkloads, stopWorkloadsScript, workloadsProbe } from './reset-lib.js';
import { HostError } from '../../../util/errors.js';

/**
 * Takes a host back to before bootstrap: what hoist installed and wrote goes, the user's own
 * files stay (drop-ins in conf.d, CNI configs that were there before, libseccomp). containerd's
 * data (root and state dirs, images, containers) goes only when asked.
 */
export default containerdTask({
  name: 'containerd_reset',
  summary: 'Stops containerd and removes what hoist installed: binaries, unit, config, registry files, CNI plugins; data dirs only with remove_data.',
  params: s.object({
    remove_data: s.bool().default(false).describe("also delete containerd's root and state directories (images, containers)"),
    stop_workloads: s
      .bool()
      .default(false)
      .describe(
        'kill the running container tasks and remove their containers (every namespace) before containerd goes; without it a host that runs any is refused',
      ),
  }),
  async prepare(_p, ctx) {
    const st = ctx.settings;
    const registry = registryPaths(st.runtime);
    return { st, registry, socket: `${st.runtime.stateDir}/containerd.sock` };
  },
  probes: (p, ctx) => ({
    // What a killed install leaves (staging, archives, temporary files) counts: a reset removes it too.
    // The unit, config.toml and crictl.yaml count only where hoist's records say it installed here.
    present:
      [CONTAINERD_STATE, ARTIFACT_DIR, STAGING_DIR, ...(p.remove_data ? [ctx.prepared.st.runtime.rootDir] : [])]
        .map((f) => `[ -e ${quote(f)} ] && echo ${quote(f)}`)
        .join('\n') + `\n[ -s ${TEMP_JOURNAL} ] && echo ${TEMP_JOURNAL}\ntrue`,
    // Containers that outlive containerd keep running with their shim's binary gone: counted before anything is asked.
    workloads: workloadsProbe(BIN.ctr, ctx.prepared.socket),
    // Directories hoist's install saw missing (containerd made them, or the install did) and are empty, deepest first.
    emptyDirs: `if [ -f ${CREATED_DIRS} ]; then gone=" "; LC_ALL=C sort -ru ${CREATED_DIRS} | while IFS= read -r d; do [ -d "$d" ] && [ ! -L "$d" ] || continue; ok=1; for e in "$d"/* "$d"/.[!.]* "$d"/..?*; do [ -e "$e" ] || [ -L "$e" ] || continue; case "$gone" in *" $e "*) ;; *) ok=0 ;; esac; done; if [ $ok = 1 ]; then gone="$gone$d "; printf '%s\\n' "$d"; fi; done; fi; true`,
    bookkeeping: BOOKKEEPING_PROBE,
    // Every file reset would delete, for --check --diff to list.
    // Only files that exist: --diff lists what a reset deletes, not what the records once named.
    // Recorded files only while they are still what hoist recorded, as the reset itself decides.
    files: `{ for st in ${INSTALL_STATS} ${CONTAINERD_STATE}/prev.stat; do [ -f "$st" ] && while IFS= read -r rec; do [ "$(stat -c '%s %Y %n' -- "\${rec#* * }" 2>/dev/null)" = "$rec" ] && printf '%s\\n' "\${rec#* * }"; done < "$st"; done; [ -f ${REGISTRY_LIST} ] && cat ${REGISTRY_LIST}; [ -d ${CONTAINERD_STATE} ] && printf '%s\\n' ${[UNIT_FILE, CONFIG_FILE, CRICTL_YAML].join(' ')}; } | while IFS= read -r f; do [ -e "$f" ] && printf '%s\\n' "$f"; done; true`,
  }),
  plan(p, ctx) {
    const present = ctx
      .probe('present')
      .out.split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    if (present.length === 0) return { actions: [] };
    // Only a containerd hoist installed is hoist's to stop, and its workloads with it.
    const wl = present.includes(CONTAINERD_STATE) ? parseWorkloads(ctx.probe('workloads').out) : { tasks: [], shims: 0 };
    const rt = ctx.prepared.st.runtime;
    const namespaces = [...new Set(wl.tasks.map((t) => t.ns))].sort();
    const running = wl.tasks.length
      ? `${wl.tasks.length} container task(s) (${wl.tasks.filter((t) => t.status === 'RUNNING').length} running) in namespace(s) ${namespaces.join(', ')}`
      : wl.shims
        ? `${wl.shims} containerd-shim process(es) while containerd does not answer`
        : '';
    if (running && !p.stop_workloads) {
      throw new HostError(
        `${running}: a reset would leave them running without containerd or their shim's binary; stop them first, or pass -e stop_workloads=true to have reset kill them and remove their containers; nothing was removed`,
      );
    }
    const stop: Action[] = running
      ? [
          {
            kind: 'change',
            summary: `stop ${running} and remove their containers`,
            diff: wl.tasks.map((t) => `-task ${t.ns}/${t.id} (${t.status})`).join('\n'),
            run: (conn) => conn.check(stopWorkloadsScript(BIN.ctr, ctx.prepared.socket), 'stop workloads').then(() => undefined),
          },
        ]
      : [];
    const emptyDirs = ctx
      .probe('emptyDirs')
      .out.split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('/'));
    const book = parseBookkeeping(ctx.probe('bookkeeping').out);
    // Validation refused these already; a reset is where a wrong one would do harm, so it asks again.
    for (const [key, dir] of [
      ['root_dir', rt.rootDir],
      ['state_dir', rt.stateDir],
    ] as const) {
      const problem = p.remove_data ? hostPathProblem(dir, OWN_DIRS) : undefined;
      if (problem) throw new HostError(`${key}: ${problem}; nothing was removed`);
    }
    const dirs = [...new Set(ctx.prepared.registry.map((f) => f.slice(0, f.lastIndexOf('/'))))];
    const removed = [
      ...new Set(
        ctx
          .probe('files')
          .out.split('\n')
          .map((l) => l.trim())
          .filter((f) => f.startsWith('/') && !f.startsWith('/etc/containerd/conf.d/')),
      ),
    ].sort();
    const dirsGone = [...[CONTAINERD_STATE, ARTIFACT_DIR, STAGING_DIR].filter((d) => present.includes(d)), ...emptyDirs].map((d) => `-${d}/ (directory)`);
    // The data directories go as far as hoist's records allow, each checked again on the host right before.
    const data = p.remove_data ? (['root_dir', 'state_dir'] as const).map((k) => ctx.state.paths.get(k)).filter((d) => d !== undefined) : [];
    if (p.remove_data && data.length !== 2) throw new HostError('root_dir and state_dir were not resolved on the host; nothing was removed');
    const fates = data.map((d) => ({ d, fate: dataDirFate(d) })).filter((x) => x.fate !== undefined);
    const kept = fates.map((x) => x.fate!.kept).filter((k) => k !== undefined);
    const dataGone = fates.filter((x) => x.d.record?.how === 'created').length;
    const q = (f: string) => quote(f);
    const script = `set -u
${SWEEP_TEMPS}
# Without hoist's records the unit, config.toml and crictl.yaml are someone else's, and so is the daemon.
owned=0; [ -d ${CONTAINERD_STATE} ] && owned=1
if [ $owned = 1 ]; then systemctl disable --now containerd.service >/dev/null 2>&1 || true; fi
${
  p.remove_data
    ? `# Containers outlive containerd (KillMode=process); their shims and mounts go with the data.
pkill -9 containerd-shim 2>/dev/null || true
for d in ${data.map((d) => q(d.resolved)).join(' ')}; do awk -v d="$d" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done; done`
    : ''
}
# What hoist installed, and what the release before it installed (an upgrade from before stale files were removed).
# Each only while it is still what hoist recorded (size, mtime, path): a file someone replaced since
# (an operator's CNI network under the bundle's old name, an edited config) is theirs and stays.
for st in ${INSTALL_STATS} ${CONTAINERD_STATE}/prev.stat; do if [ -f "$st" ]; then while IFS= read -r rec; do f=\${rec#* * }; case "$f" in /*) if [ "$(stat -c '%s %Y %n' -- "$f" 2>/dev/null)" = "$rec" ]; then rm -f -- "$f"; fi ;; esac; done < "$st"; fi; done
if [ -f ${REGISTRY_LIST} ]; then while IFS= read -r f; do rm -f "$f" "$f.hoist-prev"; rmdir "$(dirname "$f")" 2>/dev/null; done < ${REGISTRY_LIST}; fi
if [ $owned = 1 ]; then rm -f ${[UNIT_FILE, CONFIG_FILE, CRICTL_YAML].flatMap((f) => [q(f), q(`${f}.hoist-prev`)]).join(' ')}; fi
# Directories hoist's install found missing (containerd's /opt/containerd/{bin,lib}, the CRI's cni_conf_dir): only empty ones go.
if [ -f ${CREATED_DIRS} ]; then LC_ALL=C sort -ru ${CREATED_DIRS} | while IFS= read -r d; do [ -L "$d" ] || rmdir -- "$d" 2>/dev/null; done; fi
for d in ${dirs.map(q).join(' ')} ${q(rt.configPath)} ${rt.importsDir ? q(rt.importsDir) : ''} /etc/containerd /opt/cni/bin /opt/cni /opt/containerd/cluster /opt/containerd; do rmdir "$d" 2>/dev/null || true; done
rm -rf ${CONTAINERD_STATE} ${ARTIFACT_DIR} ${q(`${STAMP_DIR}/containerd.service`)} ${STAGING_DIR}
${data
  .map((d) => removeDataDirScript(d, CONTAINERD_DATA_ENTRIES))
  .filter(Boolean)
  .join('\n')}
systemctl daemon-reload
systemctl reset-failed containerd.service 2>/dev/null || true
${bookkeepingScript()}`;
    // The script's own run: data-dir records it removes and records it keeps are known from the plan.
    // With remove_data the records of the two data directories go with them; any other record stays, and its directory.
    const goneRecords = new Set(fates.filter((x) => x.d.record).map((x) => x.d.resolved));
    const keptData = book.dataDirs.filter((d) => !goneRecords.has(d));
    const remains = [
      ...book.others,
      ...(keptData.length
        ? [
            `data-dirs (the records of ${keptData.join(', ')}: ${p.remove_data ? 'directories of other modules' : 'kept without remove_data=true, so that a later reset with it knows what hoist created'})`,
          ]
        : []),
    ];
    const notes = remains.length ? [`hoist's bookkeeping in /var/lib/hoist stays, as other hoist-managed state remains: ${remains.join('; ')}`] : [];
    return {
      notes,
      actions: [
        ...stop,
        {
          kind: 'change',
          summary: `remove containerd as installed by hoist${fates.some((x) => x.d.record) ? ', with its data' : ''}: ${removed.length} file(s) and ${dirsGone.length + dataGone} director${dirsGone.length + dataGone === 1 ? 'y' : 'ies'} (--diff lists them)${kept.length ? `; ${kept.join('; ')}` : ''}`,
          diff: [...removed.map((f) => `-${f}`), ...dirsGone, ...fates.map((x) => x.fate!.diff)].join('\n'),
          run: (conn) => conn.check(script, 'reset').then(() => undefined),
        },
      ],
    };
  },
});
