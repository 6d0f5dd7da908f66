import { s } from '../../../util/schema.js';
import { quote } from '../../../ssh/quote.js';
import { releaseArch } from '../../../facts/facts.js';
import { ARTIFACT_DIR, HOIST_STATE_DIR, SWEEP_TEMPS, TEMP_JOURNAL, TEMP_MARK } from '../../../host-paths.js';
import {
  cachedDigest,
  DownloadError,
  displayUrl,
  ensureArtifact,
  ensureArtifacts,
  fetchExpectedSha256,
  proxyEnvironment,
} from '../../../artifacts/download.js';
import type { ContainerdArtifact } from '../catalog.js';
import type { Artifact } from '../../../artifacts/artifact.js';
import { containerdTask } from '../task.js';
import { stagedArtifacts, type StagedArtifact } from '../slots.js';
import { ControllerError, HostError } from '../../../util/errors.js';

export const stagedPath = (sha: string, name: string) => `${ARTIFACT_DIR}/${sha}-${name}`;

export default containerdTask({
  name: 'containerd_artifacts',
  summary: 'Release artifacts downloaded once on the controller (or by each host), sha256-verified, staged on the host.',
  params: s.object({}),
  provides: [stagedArtifacts],
  artifacts: (_p, ctx) => ctx.settings.artifacts,
  async prepare(_p, ctx): Promise<StagedArtifact[]> {
    return stageAll(ctx.settings, ctx).catch((e: unknown) => {
      throw explainMissing(e, ctx.settings.artifacts);
    });
  },
  probes: (_p, ctx) => ({
    have: ctx.prepared.map((a) => `[ -f ${quote(a.remotePath)} ] && echo ${quote(a.remotePath)}`).join('\n') + '\ntrue',
  }),
  plan(_p, ctx) {
    const hostArch = releaseArch(ctx.facts);
    if (hostArch !== ctx.settings.arch) {
      throw new HostError(
        `this host is ${ctx.facts.arch} (${hostArch}) but the release files are for ${ctx.settings.arch}; ` +
          (hostArch === 'arm64' || hostArch === 'amd64'
            ? `set release_arch = "${hostArch}" in this host's or its group's vars`
            : `upstream publishes containerd for amd64 and arm64 only`),
      );
    }
    const present = new Set(
      ctx
        .probe('have')
        .out.split('\n')
        .map((l) => l.trim()),
    );
    stagedArtifacts.put(ctx.state, ctx.prepared);
    const missing = ctx.prepared.filter((a) => !present.has(a.remotePath));
    if (missing.length) ctx.state.pending = true;
    // The archive, its staged unpack and the installed copy: refuse before pushing anything
    // rather than fill the disk halfway through.
    const need = missing.reduce((n, a) => n + (a.size ?? 0), 0) * 4;
    const free = (ctx.facts.diskFreeKb[HOIST_STATE_DIR] ?? Infinity) * 1024;
    if (need > free) {
      throw new HostError(
        `not enough disk space on ${HOIST_STATE_DIR}: ${(free / 1e6).toFixed(0)} MB free, about ${(need / 1e6).toFixed(0)} MB needed to stage and install ${missing.map((a) => a.artifact.name).join(', ')}`,
      );
    }
    const peers = ctx.settings.download === 'peers';
    return {
      actions: missing.map((a) => ({
        kind: 'change' as const,
        summary: a.dl
          ? `${peers ? 'stage' : 'push'} ${a.artifact.name} (${((a.size ?? 0) / 1e6).toFixed(1)} MB)${peers ? ' from a host that has it or the controller' : ''}`
          : `download ${a.artifact.name} on the host`,
        async run(conn) {
          if (a.dl) {
            const dl = a.dl;
            const push = async () => {
              const verified = await ensureArtifact(a.artifact, dl);
              if (verified.sha256 !== a.sha256) throw new ControllerError(`${a.artifact.name} in the cache changed during the run`);
              // Checked again on the host: this copy is what other hosts will be served.
              await conn.upload({ localPath: verified.path }, a.remotePath, { mode: 0o644, sha256: a.sha256 });
            };
            const file = { name: a.artifact.name, sha256: a.sha256, size: a.size ?? 0, remotePath: a.remotePath };
            await ctx.controller.deliver(conn, file, { peers, peerAddress: ctx.settings.peerAddress ?? conn.endpoint.host, push });
            return;
          }
          // Marked and journalled like an upload's temporary file, so a kill mid-download leaves nothing the next run keeps.
          const tmp = `${ARTIFACT_DIR}/${TEMP_MARK}dl.${a.sha256}-${a.artifact.name}`;
          await conn.check(
            `set -e; mkdir -p ${ARTIFACT_DIR}; ${SWEEP_TEMPS}; printf '%s\\n' ${quote(tmp)} >> ${TEMP_JOURNAL}
${hostProxyExports()}curl -fsSL --retry 3 -o ${quote(tmp)} ${quote(a.url)}
got=$(sha256sum < ${quote(tmp)} | cut -d' ' -f1)
if [ "$got" != ${quote(a.sha256)} ]; then rm -f ${quote(tmp)}; echo "checksum mismatch for ${a.artifact.name}: expected ${a.sha256}, got $got" >&2; exit 1; fi
mv -f ${quote(tmp)} ${quote(a.remotePath)}`,
            `download of ${a.artifact.name} on the host`,
            { timeoutMs: 30 * 60_000 },
          );
        },
      })),
    };
  },
});

/**
 * The controller's proxy settings for the host's curl (download = "host"), in the spellings curl
 * reads. They travel inside the script on stdin and reach curl's environment only, never a command line.
 */
export function hostProxyExports(env: NodeJS.ProcessEnv = process.env): string {
  const p = proxyEnvironment(env);
  if (!p) return '';
  const set = [
    p.httpProxy && `http_proxy=${quote(p.httpProxy)}`,
    p.httpsProxy && `https_proxy=${quote(p.httpsProxy)}`,
    p.noProxy && `no_proxy=${quote(p.noProxy)}`,
  ].filter(Boolean);
  return `export ${set.join(' ')}\n`;
}

type Settings = Parameters<NonNullable<Parameters<typeof containerdTask>[0]['prepare']>>[1]['settings'];
type Ctx = Parameters<NonNullable<Parameters<typeof containerdTask>[0]['prepare']>>[1];

async function stageAll(st: Settings, ctx: Ctx): Promise<StagedArtifact[]> {
  if (st.download === 'host') {
    // Hosts download; the controller still reads the published checksums so it knows what to expect.
    return Promise.all(
      st.artifacts.map(async (a) => {
        const sha = await fetchExpectedSha256(a, { offline: ctx.options.offline, cacheDir: ctx.controller.cacheDir });
        // The catalog built every URL under the controller's base; hosts use the same path under theirs.
        const url = st.hostReleaseBaseUrl + a.url.slice(st.releaseBaseUrl.length);
        return { artifact: a, sha256: sha, remotePath: stagedPath(sha, a.name), url };
      }),
    );
  }
  const dl = {
    offline: ctx.options.offline,
    cacheDir: ctx.controller.cacheDir,
    onProgress: (bytes: number, total: number | undefined, a: Artifact) => ctx.controller.progress(a.name, bytes, total),
  };
  // Planning needs only each artifact's digest; the cache index has it without re-hashing
  // tens of megabytes on every run. Anything pushed is re-verified first (see the action).
  const known = await Promise.all(st.artifacts.map((a) => cachedDigest(a, dl)));
  const missing = st.artifacts.filter((_a, i) => !known[i]);
  const fetched = new Map((await ensureArtifacts(missing, dl)).map((g) => [g.artifact.url, g]));
  return st.artifacts.map((a, i) => {
    const d = known[i] ?? fetched.get(a.url)!;
    return {
      artifact: a,
      sha256: d.sha256,
      size: d.size,
      remotePath: stagedPath(d.sha256, a.name),
      url: a.url,
      dl: { cacheDir: dl.cacheDir, offline: dl.offline },
    };
  });
}

/** Which variable picks each release file, for the message when a mirror lacks it. */
const VARIABLE_OF: Record<ContainerdArtifact['id'], string> = {
  bundle: 'containerd_version',
  containerd: 'containerd_version',
  runc: 'runc_version',
  cni: 'cni_version',
  crictl: 'crictl_version',
};

/**
 * A release file (or its checksum file) the mirror doesn't have is almost always a version the
 * mirror doesn't carry: say which variable chose it and how to pick another, instead of a bare 404.
 */
export function explainMissing(e: unknown, artifacts: readonly ContainerdArtifact[]): unknown {
  if (!(e instanceof DownloadError) || e.status !== 404) return e;
  const a = artifacts.find((x) => e.url === x.url || e.url.startsWith(`${x.url}.`) || (x.checksumUrl !== undefined && e.url === x.checksumUrl));
  if (!a) return e;
  const variable = VARIABLE_OF[a.id];
  const skip = a.id === 'crictl' ? ', or crictl_version = false to install no crictl' : '';
  const base = displayUrl(e.url).replace(/\/[^/]*\/[^/]*$/, '/');
  return new DownloadError(
    `${a.name} is not on the release mirror (HTTP 404 for ${displayUrl(e.url)}): ${variable} chose it; set ${variable} to a version ${base} has${skip} (with -e ${variable}="X.Y.Z", in the playbook's [defaults] or the inventory)`,
    e.url,
    404,
    e.attempts,
    { cause: e },
  );
}
