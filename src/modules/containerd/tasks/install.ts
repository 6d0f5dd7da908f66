import { s } from '../../../util/schema.js';
import { osProfile, relabelCommand } from '../../../facts/os.js';
import { removeScript } from '../../../tasks/lib/packages.js';
import { quote } from '../../../ssh/quote.js';
import type { Action } from '../../../tasks/types.js';
import { sha256 } from '../../../util/hash.js';
import { ARTIFACT_DIR, STAGING_DIR, SWEEP_TEMPS, TEMP_JOURNAL, tempBeside } from '../../../host-paths.js';
import { compareVersions } from '../version.js';
import type { StagedArtifact } from '../slots.js';
import { armBinariesRollback } from '../rollback.js';
import { CONTAINERD_STATE, CREATED_DIRS, INSTALL_RECORD, INSTALL_STATS } from '../paths.js';
import { previousVersion, stagedArtifacts } from '../slots.js';
import { containerdTask } from '../task.js';
import { fileRead, packagesRead } from '../../../facts/reads.js';
import { parseFileProbe } from '../../../tasks/lib/files.js';
import { HostError } from '../../../util/errors.js';

/** Distribution packages of containerd that would fight an upstream install under /usr/local. */
const DISTRO_PACKAGES = ['containerd', 'containerd.io', 'docker.io'];

/** Files hoist renders itself; the bundle's copies would fight them on every run. */
const RENDERED_ELSEWHERE = ['etc/systemd/system/containerd.service', 'etc/crictl.yaml'];

/**
 * The 1.x bundle's bridge network. containerd loads the lexically first file of its CNI directory,
 * so this one shadows a cluster's 10-flannel.conflist or 10-weave.conflist: not installed unless
 * keep_bundle_cni_conflist, and removed by an install (an upgrade to 2.x too) when it is the
 * bundle's file: byte-identical to the staged one, or as hoist recorded installing it.
 */
export const BUNDLE_CNI_CONFLIST = 'etc/cni/net.d/10-containerd-net.conflist';

export interface InstallRecord {
  version: string;
  artifacts: { id: string; name: string; sha256: string }[];
}

/** Where each artifact unpacks inside the staging root, as upstream's install instructions place it. */
function unpackStep(a: StagedArtifact, stage: string): string {
  const src = quote(a.remotePath);
  switch (a.artifact.id) {
    case 'bundle':
      return `tar --no-overwrite-dir -C ${stage} -xzf ${src}`;
    case 'containerd':
      return `mkdir -p ${stage}/usr/local && tar -C ${stage}/usr/local -xzf ${src}`;
    case 'runc':
      return `install -D -m 755 ${src} ${stage}/usr/local/sbin/runc`;
    case 'cni':
      return `mkdir -p ${stage}/opt/cni/bin && tar -C ${stage}/opt/cni/bin -xzf ${src}`;
    case 'crictl':
      return `mkdir -p ${stage}/usr/local/bin && tar -C ${stage}/usr/local/bin -xzf ${src}`;
  }
}

/**
 * Unpacks into a staging directory first, then moves each file into place with a rename, so a
 * killed run never leaves a half-written binary, and a running containerd keeps its old inode.
 * Files under etc/ that already exist are the user's (CNI config); they are left alone, as
 * upstream's --no-overwrite-dir extraction leaves directories alone. The previous binaries are
 * kept in prev/ for a rollback. The install record is written last: until it is, the next run
 * installs again, so a kill anywhere before it is repaired by one rerun.
 */
export function installScript(
  artifacts: StagedArtifact[],
  record: InstallRecord,
  opts: { relabel?: string; keepBundleCni?: boolean; cniConfDir?: string } = {},
): string {
  const { relabel = '', keepBundleCni = false, cniConfDir = '/etc/cni/net.d' } = opts;
  const maybeCreated = [...new Set(['/opt/containerd', '/opt/containerd/bin', '/opt/containerd/lib', '/etc/cni', cniConfDir])];
  const stage = `${STAGING_DIR}/containerd-${record.version}`;
  const skip = [...RENDERED_ELSEWHERE, ...(keepBundleCni ? [] : [BUNDLE_CNI_CONFLIST])].join('|');
  const cni = `/${BUNDLE_CNI_CONFLIST}`;
  // Never a user's file: only one equal to the bundle's, or unchanged since hoist installed it.
  const dropBundleCni = keepBundleCni
    ? ''
    : `# The bundle's CNI network goes (see BUNDLE_CNI_CONFLIST), kept in prev.new for a rollback.
if [ -f ${cni} ] && { { [ -f "$stage/${BUNDLE_CNI_CONFLIST}" ] && cmp -s "$stage/${BUNDLE_CNI_CONFLIST}" ${cni}; } || grep -qxF -- "$(stat -c '%s %Y %n' -- ${cni})" ${INSTALL_STATS} 2>/dev/null; }; then
  keep="${CONTAINERD_STATE}/prev.new/${BUNDLE_CNI_CONFLIST}"
  if [ ! -e "$keep" ]; then mkdir -p "\${keep%/*}"; cp -a ${cni} "$keep.hoist-part" && mv -f "$keep.hoist-part" "$keep"; fi
  rm -f ${cni}
  echo "removed the 1.x bundle's ${cni}" >&2
fi`;
  return `set -euo pipefail
trap 'echo "install step failed: $BASH_COMMAND" >&2' ERR
${SWEEP_TEMPS}
stage=${quote(stage)}
# Any release's staging tree is a killed install's leftover: installs never overlap on a host.
rm -rf ${STAGING_DIR}/containerd-* && mkdir -p "$stage" ${CONTAINERD_STATE}
# Before the first install: which of the directories containerd (or this install) makes are missing, for a reset to remove once empty.
if [ ! -f ${INSTALL_RECORD} ] && [ ! -f ${CREATED_DIRS} ]; then for d in ${maybeCreated.map(quote).join(' ')}; do [ -e "$d" ] || [ -L "$d" ] || printf '%s\\n' "$d"; done > ${CREATED_DIRS}.new && mv -f ${CREATED_DIRS}.new ${CREATED_DIRS}; fi
${artifacts.map((a) => unpackStep(a, '"$stage"')).join('\n')}
cd "$stage"
find . -type f -o -type l | sed 's|^\\./||' | LC_ALL=C sort > ${CONTAINERD_STATE}/files.new
# A prev.new left by a killed install holds the recorded release's files, copied before that
# install replaced them: it is kept, or the files it already replaced would be saved as "previous".
mkdir -p ${CONTAINERD_STATE}/prev.new
installed=()
while IFS= read -r rel; do
  dest="/$rel"
  case "$rel" in ${skip}) continue ;; esac
  case "$rel" in etc/*) if [ -e "$dest" ]; then continue; fi ;; esac
  d=\${dest%/*}; [ -d "\${d:-/}" ] || mkdir -p "$d"
  keep="${CONTAINERD_STATE}/prev.new/$rel"
  if [ -e "$dest" ] && [ ! -d "$dest" ] && [ ! -e "$keep" ] && [ ! -L "$keep" ]; then
    k=\${keep%/*}; [ -d "$k" ] || mkdir -p "$k"
    cp -a "$dest" "$keep.hoist-part" && mv -f "$keep.hoist-part" "$keep"
  fi
  tmp=${tempBeside('dest')}
  printf '%s\\n' "$tmp" >> ${TEMP_JOURNAL}
  # The staged file moves rather than copies (a rename where staging and target share a filesystem):
  # the staging tree is thrown away after, and a killed install unpacks it again.
  mv -f "$rel" "$tmp" && mv -f "$tmp" "$dest"
  installed+=("$dest")
done < ${CONTAINERD_STATE}/files.new
${dropBundleCni}
# One stat for every installed file: the record the gathering round trip compares against.
if [ \${#installed[@]} -gt 0 ]; then stat -c '%s %Y %n' -- "\${installed[@]}" > ${INSTALL_STATS}.new; else : > ${INSTALL_STATS}.new; fi
${relabel ? `if [ \${#installed[@]} -gt 0 ]; then ${relabel}; fi` : ''}
# Files the recorded release installed that this one doesn't ship (1.x's containerd-shim and
# containerd-shim-runc-v1 after a move to 2.x) go, kept in prev.new for a rollback like the others.
if [ -f ${INSTALL_STATS} ]; then
  cut -d' ' -f3- ${INSTALL_STATS} | while IFS= read -r old; do
    rel=\${old#/}
    case "$rel" in etc/*|'') continue ;; esac
    if grep -qxF -- "$rel" ${CONTAINERD_STATE}/files.new; then continue; fi
    if [ ! -f "$old" ] && [ ! -L "$old" ]; then continue; fi
    keep="${CONTAINERD_STATE}/prev.new/$rel"
    if [ ! -e "$keep" ] && [ ! -L "$keep" ]; then mkdir -p "$(dirname "$keep")"; cp -a "$old" "$keep.hoist-part" && mv -f "$keep.hoist-part" "$keep"; fi
    rm -f "$old"
  done
fi
find ${CONTAINERD_STATE}/prev.new -name '*.hoist-part' -delete
if [ -f ${INSTALL_RECORD} ]; then rm -rf ${CONTAINERD_STATE}/prev && mv ${CONTAINERD_STATE}/prev.new ${CONTAINERD_STATE}/prev && cp -a ${INSTALL_RECORD} ${CONTAINERD_STATE}/prev.json && { cp -a ${INSTALL_STATS} ${CONTAINERD_STATE}/prev.stat 2>/dev/null || true; }; else rm -rf ${CONTAINERD_STATE}/prev.new; fi
mv -f ${INSTALL_STATS}.new ${INSTALL_STATS}
mv -f ${CONTAINERD_STATE}/files.new ${CONTAINERD_STATE}/files.list
cd / && rm -rf "$stage"
# Archives of releases older than the previous one go; the previous one's stay for a rollback's rerun.
keep="${artifacts.map((a) => a.sha256).join(' ')} $( { grep -o '"sha256":"[0-9a-f]*"' ${CONTAINERD_STATE}/prev.json 2>/dev/null || true; } | cut -d'"' -f4 | tr '\\n' ' ')"
for f in ${ARTIFACT_DIR}/*; do [ -f "$f" ] || continue; b=\${f##*/}; case " $keep " in *" \${b%%-*} "*) ;; *) rm -f "$f" ;; esac; done
printf '%s' ${quote(JSON.stringify(record))} > ${INSTALL_RECORD}.new && mv -f ${INSTALL_RECORD}.new ${INSTALL_RECORD}`;
}

/**
 * Prints "drift PATH" for each installed file whose size or mtime differs from the record `stats`
 * ("size mtime path" lines) or that is gone. One stat for every file, the names read with builtins;
 * only a difference costs more.
 */
export function driftProbe(stats: string): string {
  const q = quote(stats);
  return `if [ -f ${q} ]; then
  mapfile -t want < ${q}
  cur=$(stat -c '%s %Y %n' -- "\${want[@]#* * }" 2>/dev/null)
  printf -v rec '%s\\n' "\${want[@]}"
  [ "$cur" = "\${rec%$'\\n'}" ] || diff <(echo "$cur") ${q} | sed -n 's/^> [0-9]* [0-9]* /drift /p'
fi`;
}

export default containerdTask({
  name: 'containerd_install',
  summary: 'Unpacks the staged release onto the host (bundle for 1.x, components for 2.x) and records what is installed.',
  params: s.object({}),
  needs: [stagedArtifacts],
  provides: [previousVersion],
  probes: () => ({
    record: fileRead(INSTALL_RECORD, 'text'),
    drift: driftProbe(INSTALL_STATS),
    distro: packagesRead(DISTRO_PACKAGES),
  }),
  plan(_p, ctx) {
    const st = ctx.settings;
    const staged = stagedArtifacts.get(ctx.state);
    const record: InstallRecord = {
      version: st.runtime.containerdVersion,
      artifacts: staged.map((a) => ({ id: a.artifact.id, name: a.artifact.name, sha256: a.sha256 })),
    };
    const recordText = JSON.stringify(record);
    // The service task restarts containerd when this record changes: it stands for every binary.
    ctx.state.files.set(INSTALL_RECORD, sha256(recordText));
    const haveText = parseFileProbe(ctx.probe('record')).content?.toString('utf8').trim() ?? '';
    const drift = ctx
      .probe('drift')
      .out.split('\n')
      .filter((l) => l.startsWith('drift '))
      .map((l) => l.slice(6));
    // A host without a package database has no distribution containerd.
    const distro = [...(ctx.probe('distro').installed ?? [])];
    if (distro.length && !st.replaceDistroContainerd) {
      throw new HostError(
        `a distribution containerd is installed (${distro.join(', ')}); hoist installs upstream releases under /usr/local and won't run both. ` +
          `Remove it, or set replace_distro_containerd = true to have hoist remove the package first.`,
      );
    }
    let have: InstallRecord | undefined;
    try {
      have = haveText ? (JSON.parse(haveText) as InstallRecord) : undefined;
    } catch {
      have = undefined;
    }
    if (have && compareVersions(st.runtime.containerdVersion, have.version) < 0 && !st.allowDowngrade) {
      throw new HostError(
        `containerd ${have.version} is installed; installing the older ${st.runtime.containerdVersion} is a downgrade. Set allow_downgrade = true if you mean it.`,
      );
    }
    previousVersion.put(ctx.state, have?.version);
    if (haveText === recordText && drift.length === 0 && distro.length === 0) return { actions: [] };
    ctx.state.pending = true;
    let installRan = false;
    armBinariesRollback(ctx.state, have?.version, () => installRan);
    const why = !have
      ? 'fresh install'
      : have.version !== record.version
        ? `${have.version} → ${record.version}`
        : drift.length
          ? `repair ${drift.length} changed file(s): ${drift.slice(0, 3).join(', ')}`
          : 'artifacts changed';
    const actions: Action[] = [];
    if (distro.length) {
      actions.push({
        kind: 'change',
        summary: `remove distribution packages ${distro.join(', ')}`,
        run: async (conn) => {
          const cmd = removeScript(ctx.facts.packageManager, distro);
          await conn.check(`systemctl stop containerd 2>/dev/null || true\n${cmd}`, 'removing the distribution containerd', { timeoutMs: 600_000 });
        },
      });
    }
    if (!ctx.facts.tools.tar) throw new HostError('tar is not installed on this host; hoist needs it to unpack the release');
    actions.push({
      kind: 'change',
      summary: `install containerd ${record.version} (${why})`,
      run: async (conn) => {
        installRan = true;
        await conn.check(
          installScript(staged, record, {
            relabel: relabelCommand(osProfile(ctx.facts), '"${installed[@]}"'),
            keepBundleCni: ctx.settings.keepBundleCni,
            cniConfDir: ctx.settings.runtime.cniConfDir,
          }),
          `installing containerd ${record.version}`,
          { timeoutMs: 600_000 },
        );
      },
    });
    return { actions };
  },
});
