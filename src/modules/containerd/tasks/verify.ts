import { s } from '../../../util/schema.js';
import { quote } from '../../../ssh/quote.js';
import type { ApplyContext } from '../../../tasks/types.js';
import { containerdTask } from '../task.js';
import { runSections, type ProbeResult } from '../../../facts/probe.js';
import type { Connection } from '../../../tasks/connection.js';
import {
  parseCtrVersion,
  parsePluginList,
  evaluatePlugins,
  parseCrictlVersion,
  parseCrictlInfo,
  parseConfigDump,
  DEFAULT_PLUGIN_ERROR_ALLOWLIST,
  pluginKey,
} from '../parse.js';
import { sameCore } from '../version.js';
import { supportsConfigPath } from '../config/features.js';
import { type RuntimeConfig } from '../config/types.js';
import { CriClient } from '../cri/client.js';
import { CriError, GrpcStatus } from '../cri/grpc.js';
import { diagnosePull, formatPullFailure, imageRegistryHost } from '../pull-errors.js';
import type { ContainerdSettings } from '../settings.js';
import { BIN } from '../paths.js';
import { daemonSettling } from '../slots.js';
import { cniConflistPath } from '../config/cni.js';
import { BUNDLE_CNI_CONFLIST } from './install.js';
import { HostError } from '../../../util/errors.js';

/** How long one CRI call of the verification may take. */
const CRI_CALL_MS = 30_000;

/** Read-only commands whose output the verification judges. */
function checks(st: ContainerdSettings): Record<string, string> {
  return {
    ctr: `${BIN.ctr} --address ${quote(`${st.runtime.stateDir}/containerd.sock`)} version`,
    plugins: `${BIN.ctr} --address ${quote(`${st.runtime.stateDir}/containerd.sock`)} plugin ls`,
    dump: `${BIN.containerd} config dump`,
    // Without the socket crictl waits out its timeout twice, and ctr version has already said the daemon is down.
    // The names only (builtins): which network configuration containerd's CRI plugin loads.
    cni: `for f in ${quote(st.runtime.cniConfDir)}/*; do [ -f "$f" ] && printf '%s\\n' "\${f##*/}"; done; true`,
    crictl: `if [ -x ${BIN.crictl} ] && [ -S ${quote(`${st.runtime.stateDir}/containerd.sock`)} ]; then ${BIN.crictl} version && echo @@info && ${BIN.crictl} info; else echo absent; fi`,
  };
}

export interface VerifyOutcome {
  ok: boolean;
  lines: string[];
  problems: string[];
}

/** Judges the outputs against what the playbook asked for; pure, so it is unit-tested without a host. */
export function judge(st: ContainerdSettings, r: (id: string) => ProbeResult): VerifyOutcome {
  const want = st.runtime.containerdVersion;
  const lines: string[] = [];
  const problems: string[] = [];
  const ctr = parseCtrVersion(r('ctr').out);
  if (!ctr.server) problems.push(`ctr version: the daemon did not answer${ctr.errors.length ? ` (${ctr.errors.join('; ')})` : ''}`);
  else if (!sameCore(ctr.server.version, want)) problems.push(`ctr version: server runs ${ctr.server.version}, expected ${want}`);
  else lines.push(`server ${ctr.server.version}, client ${ctr.client.version}`);
  if (ctr.client && !sameCore(ctr.client.version, want)) problems.push(`ctr version: client is ${ctr.client.version}, expected ${want}`);

  if (r('plugins').code === 0) {
    const rows = parsePluginList(r('plugins').out);
    const ev = evaluatePlugins(rows, { containerdVersion: want, allowErrors: [...DEFAULT_PLUGIN_ERROR_ALLOWLIST, ...st.pluginErrorAllow] });
    if (!ev.criOk)
      problems.push(
        `ctr plugin ls: CRI plugin not ok (${[...ev.missing.map((m) => `${m} missing`), ...ev.criNotOk.map((p) => `${pluginKey(p)} ${p.status}`)].join(', ')})`,
      );
    if (ev.unexpectedErrors.length) problems.push(`ctr plugin ls: unexpected error rows: ${ev.unexpectedErrors.map(pluginKey).join(', ')}`);
    const ok = rows.filter((p) => p.status === 'ok').length;
    lines.push(`plugins: ${ok} ok, CRI ok${ev.allowedErrors.length ? `, allowed errors: ${ev.allowedErrors.map((p) => p.id).join(', ')}` : ''}`);
  } else problems.push(`ctr plugin ls failed: ${r('plugins').out.trim().split('\n').pop()}`);

  if (r('dump').code === 0) {
    const eff = parseConfigDump(r('dump').out, { containerdVersion: want });
    const rt = st.runtime;
    if (eff.systemdCgroup !== null && eff.systemdCgroup !== rt.systemdCgroup)
      problems.push(`effective config: SystemdCgroup is ${eff.systemdCgroup}, expected ${rt.systemdCgroup}`);
    if (eff.sandboxImage !== null && eff.sandboxImage !== rt.sandboxImage)
      problems.push(`effective config: sandbox image is ${eff.sandboxImage}, expected ${rt.sandboxImage}`);
    if (supportsConfigPath(rt.version) && eff.registryConfigPath !== rt.configPath && !eff.registryConfigDirs.includes(rt.configPath)) {
      problems.push(`effective config: registry config_path is "${eff.registryConfigPath}", expected ${rt.configPath}`);
    }
    lines.push(
      `effective config: SystemdCgroup=${eff.systemdCgroup ?? 'not shown by this version'}, sandbox ${eff.sandboxImage ?? '(default)'}, config_path ${eff.registryConfigPath || '(none)'}`,
    );
  } else problems.push(`containerd config dump failed: ${r('dump').out.trim().split('\n').slice(-2).join(' ')}`);

  lines.push(...cniWinner(st, r('cni').code === 0 ? r('cni').out.split('\n').filter(Boolean) : []));

  const cr = r('crictl').out;
  if (cr.trim() !== 'absent') {
    if (r('crictl').code !== 0) problems.push(`crictl failed: ${cr.trim().split('\n').slice(-2).join(' ')}`);
    else {
      const [ver, info] = cr.split('@@info');
      const v = parseCrictlVersion(ver);
      const inf = parseCrictlInfo(info);
      const ready = inf.conditions.find((c) => c.type === 'RuntimeReady');
      if (!ready?.status) problems.push(`crictl info: RuntimeReady is not true (${ready?.reason ?? 'missing'})`);
      lines.push(`crictl: ${v.runtimeName} ${v.runtimeVersion}, RuntimeReady`);
    }
  }
  return { ok: problems.length === 0, lines, problems };
}

/**
 * containerd's CRI plugin loads the lexically first .conf/.conflist/.json file of cni_conf_dir (as
 * libcni sorts them) and ignores the others: a line naming it, and a WARNING when it is not the
 * network the operator expects (hoist's when cni_conflist = "bridge"; never the 1.x bundle's unless
 * keep_bundle_cni_conflist), since pods would get that network instead.
 */
export function cniWinner(st: Pick<ContainerdSettings, 'runtime' | 'cni' | 'keepBundleCni'>, names: string[]): string[] {
  const dir = st.runtime.cniConfDir;
  const files = names.filter((n) => /\.(conf|conflist|json)$/.test(n)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const want = st.cni ? cniConflistPath(dir).split('/').pop()! : undefined;
  if (!files.length)
    return [
      want
        ? `WARNING: CNI: ${dir} holds no network configuration; expected ${want}`
        : `CNI: ${dir} holds no network configuration (the cluster's CNI plugin writes one)`,
    ];
  const [first, ...others] = files;
  const line = `CNI: containerd uses ${dir}/${first}${others.length ? ` (first of ${files.length}; not used: ${others.join(', ')})` : ''}`;
  if (want && first !== want) return [`WARNING: ${line}, not hoist's ${want}: pods get that network`];
  if (!want && first === BUNDLE_CNI_CONFLIST.split('/').pop() && !st.keepBundleCni && dir === '/etc/cni/net.d') {
    return [
      `WARNING: ${line}: the 1.x bundle's bridge network${others.length ? `, which shadows ${others[0]}` : ''}; remove it, or set keep_bundle_cni_conflist = true if it is meant`,
    ];
  }
  return [line];
}

/**
 * The `ctr` command that pulls like the CRI plugin does: from 1.5 on ctr reads the same hosts.toml
 * when given --hosts-dir (1.4 has none: its CRI mirrors live in config.toml, which ctr ignores).
 * 1.x keeps registry credentials in config.toml, so ctr needs them as --user; 2.x puts them in
 * hosts.toml, which ctr then sends as well.
 */
export function ctrPullCommand(rt: Pick<RuntimeConfig, 'version' | 'configPath' | 'registries'>, image: string): string | null {
  if (!supportsConfigPath(rt.version)) return null;
  const auth = rt.registries[imageRegistryHost(image)]?.auth;
  const user = auth && rt.version.major < 2 ? ` --user ${quote(auth.kind === 'basic' ? auth.username : 'USER')}` : '';
  return `ctr -n k8s.io image pull --hosts-dir ${quote(rt.configPath)}${user} ${quote(image)}`;
}

/** The CRI check that needs no crictl: gRPC to containerd's socket through the SSH connection. */
export async function criCheck(
  conn: Pick<Connection, 'openUnixStream'>,
  socket: string,
  pullTest: string[],
  /** What hoist configures, to name the missing or rejected setting when a pull fails. */
  rt?: Pick<RuntimeConfig, 'version' | 'configPath' | 'registries'>,
  timeouts: { callMs?: number; pullMs?: number } = {},
): Promise<{ lines: string[]; problems: string[] }> {
  const lines: string[] = [];
  const problems: string[] = [];
  let client: CriClient | undefined;
  try {
    // A fresh channel per HTTP/2 session: after a pull times out, the next pull dials again. The
    // deadline is for a daemon that is up but slow (kubelet allows its runtime 2 min by default);
    // a node that can't answer Status in 30 s is not ready for pods anyway.
    client = new CriClient({ dial: () => conn.openUnixStream(socket), timeoutMs: timeouts.callMs ?? CRI_CALL_MS, pullTimeoutMs: timeouts.pullMs });
    // The first call also waits for the bridge's interpreter and sudo on the host; on a host that
    // busy (a fleet unpacking at once) one deadline can pass with nothing wrong. A second one can't.
    const c = client;
    // Status goes out with Version, on the same HTTP/2 session: one round trip for both instead of
    // one each (each call finds its API package by itself). When Version needed its second try (the
    // host too busy to answer in time), a Status that failed beside it is asked again; otherwise its
    // failure is the answer.
    const statusBeside = c.status().then(
      (st) => st,
      (e: unknown) => (e instanceof Error ? e : new CriError(GrpcStatus.UNKNOWN, String(e), 'Status')),
    );
    let retried = false;
    const v = await c.version().catch(async (e: unknown) => {
      if (!(e instanceof CriError && e.code === GrpcStatus.DEADLINE_EXCEEDED)) throw e;
      retried = true;
      const again = await c.version();
      lines.push(`CRI Version answered on a second try (${e.grpcMessage} the first time)`);
      return again;
    });
    const first = await statusBeside;
    if (first instanceof Error && !retried) throw first;
    const st = first instanceof Error ? await client.status() : first;
    const ready = st.conditions.find((c) => c.type === 'RuntimeReady');
    if (!ready?.status) problems.push(`CRI Status: RuntimeReady is not true (${ready?.reason ?? 'absent'}: ${ready?.message ?? ''})`);
    lines.push(`CRI ${v.api}: ${v.runtimeName} ${v.runtimeVersion}, RuntimeReady=${ready?.status ?? false}`);
    if (rt && pullTest.length === 0 && Object.keys(rt.registries).length > 0) {
      const generic = ctrPullCommand({ ...rt, registries: {} }, 'IMAGE');
      if (generic)
        lines.push(
          `ctr pulls with the same registry settings as CRI: ${generic}${rt.version.major < 2 && Object.values(rt.registries).some((r) => r.auth) ? ' (add --user for registries with credentials: 1.x keeps them in config.toml)' : ''}`,
        );
    }
    for (const image of pullTest) {
      try {
        const ref = await client.pullImage(image);
        lines.push(`pull ${image}: ok (${ref})`);
        const ctr = rt && ctrPullCommand(rt, image);
        if (ctr)
          lines.push(
            `pull ${image} with ctr (same hosts.toml): ${ctr}${/ --user /.test(ctr) ? ' (asks for the password: containerd 1.x keeps it in config.toml, which ctr does not read)' : ''}`,
          );
      } catch (e) {
        problems.push(formatPullFailure(image, diagnosePull(image, (e as Error).message, rt?.registries)));
      }
    }
  } catch (e) {
    problems.push(`CRI call over the containerd socket failed: ${(e as Error).message}`);
  } finally {
    await client?.close().catch(() => undefined);
  }
  return { lines, problems };
}

export default containerdTask({
  name: 'containerd_verify',
  summary:
    'Verifies the running containerd: ctr version (client and server), ctr plugin ls, the effective config, crictl where installed, and a CRI call of its own.',
  params: s.object({
    pull_test: s.list(s.string()).default([]).describe('images each host pulls over CRI to prove registries work'),
    settle_seconds: s.int(0, 120).default(15).describe('how long to retry right after a restart'),
  }),
  verifies: true,
  probes: (_p, ctx) => checks(ctx.settings),
  // The CRI call overlaps the gathering round trip; on a host with nothing to change, its answer is final.
  live: (_p, ctx) => criCheck(ctx.conn, `${ctx.settings.runtime.stateDir}/containerd.sock`, [], ctx.settings.runtime),
  plan(p, ctx) {
    const st = ctx.settings;
    // A change, or a daemon that was not up when the host was read: read again, within the settle window.
    const changedBefore = ctx.state.pending || daemonSettling.peek(ctx.state) === true;
    const early = ctx.live as Promise<{ lines: string[]; problems: string[] } | Error> | undefined;
    return {
      actions: [
        {
          kind: 'check',
          summary: 'verify containerd',
          async run(conn: Connection, actx: ApplyContext) {
            const deadline = Date.now() + (changedBefore ? p.settle_seconds * 1000 : 0);
            for (;;) {
              // Nothing changed: judge what the gathering round trip already read. Otherwise read again.
              const fresh = changedBefore ? await runSections(conn, { together: new Map(Object.entries(checks(st))) }) : undefined;
              const get = (id: string) => fresh?.get(id) ?? ctx.probe(id);
              const outcome = judge(st, get);
              const reuse = !changedBefore && p.pull_test.length === 0 && early ? await early : undefined;
              const cri = !outcome.ok
                ? { lines: [], problems: [] }
                : reuse && !(reuse instanceof Error)
                  ? reuse
                  : await criCheck(conn, `${st.runtime.stateDir}/containerd.sock`, p.pull_test, st.runtime);
              const problems = [...outcome.problems, ...cri.problems];
              if (problems.length === 0) {
                for (const l of [...outcome.lines, ...cri.lines]) actx.note(l);
                return;
              }
              if (Date.now() >= deadline) {
                // What did work (e.g. the pulls that succeeded) is reported next to what did not.
                for (const l of [...outcome.lines, ...cri.lines]) actx.note(l);
                throw new HostError(`verification failed:\n  ${problems.join('\n  ')}`);
              }
              await new Promise((r) => setTimeout(r, 1000));
            }
          },
        },
      ],
    };
  },
});
