import { s } from '../util/schema.js';
import { quote } from '../ssh/quote.js';
import { defineTask, type ApplyContext } from './types.js';
import { runSections, type ProbeResult } from '../facts/probe.js';
import type { HostConnection } from '../ssh/connection.js';
import { parseCtrVersion, parsePluginList, evaluatePlugins, parseCrictlVersion, parseCrictlInfo, parseConfigDump, DEFAULT_PLUGIN_ERROR_ALLOWLIST, pluginKey } from '../containerd/parse.js';
import { sameCore } from '../containerd/version.js';
import { supportsConfigPath } from '../containerd/runtime-config.js';
import { CriClient } from '../containerd/cri.js';
import { BIN, settingsOrInputError, type ContainerdSettings, CONTAINERD_VARS } from './containerd/settings.js';

/** Read-only commands whose output the verification judges. */
function checks(st: ContainerdSettings): Record<string, string> {
  return {
    ctr: `${BIN.ctr} --address ${quote(`${st.runtime.stateDir}/containerd.sock`)} version`,
    plugins: `${BIN.ctr} --address ${quote(`${st.runtime.stateDir}/containerd.sock`)} plugin ls`,
    dump: `${BIN.containerd} config dump`,
    crictl: `if [ -x ${BIN.crictl} ]; then ${BIN.crictl} version && echo @@info && ${BIN.crictl} info; else echo absent; fi`,
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
    if (!ev.criOk) problems.push(`ctr plugin ls: CRI plugin not ok (${[...ev.missing.map((m) => `${m} missing`), ...ev.criNotOk.map((p) => `${pluginKey(p)} ${p.status}`)].join(', ')})`);
    if (ev.unexpectedErrors.length) problems.push(`ctr plugin ls: unexpected error rows: ${ev.unexpectedErrors.map(pluginKey).join(', ')}`);
    const ok = rows.filter((p) => p.status === 'ok').length;
    lines.push(`plugins: ${ok} ok, CRI ok${ev.allowedErrors.length ? `, allowed errors: ${ev.allowedErrors.map((p) => p.id).join(', ')}` : ''}`);
  } else problems.push(`ctr plugin ls failed: ${r('plugins').out.trim().split('\n').pop()}`);

  if (r('dump').code === 0) {
    const eff = parseConfigDump(r('dump').out, { containerdVersion: want });
    const rt = st.runtime;
    if (eff.systemdCgroup !== null && eff.systemdCgroup !== rt.systemdCgroup) problems.push(`effective config: SystemdCgroup is ${eff.systemdCgroup}, expected ${rt.systemdCgroup}`);
    if (eff.sandboxImage !== null && eff.sandboxImage !== rt.sandboxImage) problems.push(`effective config: sandbox image is ${eff.sandboxImage}, expected ${rt.sandboxImage}`);
    if (supportsConfigPath(rt.version) && eff.registryConfigPath !== rt.configPath && !eff.registryConfigDirs.includes(rt.configPath)) {
      problems.push(`effective config: registry config_path is "${eff.registryConfigPath}", expected ${rt.configPath}`);
    }
    lines.push(`effective config: SystemdCgroup=${eff.systemdCgroup ?? 'not shown by this version'}, sandbox ${eff.sandboxImage ?? '(default)'}, config_path ${eff.registryConfigPath || '(none)'}`);
  } else problems.push(`containerd config dump failed: ${r('dump').out.trim().split('\n').slice(-2).join(' ')}`);

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

/** The CRI check that needs no crictl: gRPC to containerd's socket through the SSH connection. */
export async function criCheck(conn: HostConnection, socket: string, pullTest: string[]): Promise<{ lines: string[]; problems: string[] }> {
  const stream = await conn.forwardUnix(socket);
  const client = new CriClient({ createConnection: () => stream, timeoutMs: 10_000 });
  const lines: string[] = [];
  const problems: string[] = [];
  try {
    const v = await client.version();
    const st = await client.status();
    const ready = st.conditions.find((c) => c.type === 'RuntimeReady');
    if (!ready?.status) problems.push(`CRI Status: RuntimeReady is not true (${ready?.reason ?? 'absent'}: ${ready?.message ?? ''})`);
    lines.push(`CRI ${v.api}: ${v.runtimeName} ${v.runtimeVersion}, RuntimeReady=${ready?.status ?? false}`);
    for (const image of pullTest) {
      try {
        const ref = await client.pullImage(image);
        lines.push(`pull ${image}: ok (${ref})`);
      } catch (e) {
        problems.push(`pull ${image}: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    problems.push(`CRI call over the containerd socket failed: ${(e as Error).message}`);
  } finally {
    await client.close().catch(() => undefined);
  }
  return { lines, problems };
}

export default defineTask({
  name: 'containerd_verify',
  summary: 'Verifies the running containerd: ctr version (client and server), ctr plugin ls, the effective config, crictl where installed, and a CRI call of its own.',
  reads: CONTAINERD_VARS,
  params: s.object({
    pull_test: s.list(s.string()).default([]).describe('images each host pulls over CRI to prove registries work'),
    settle_seconds: s.int(0, 120).default(15).describe('how long to retry right after a restart'),
  }),
  async prepare(_p, ctx) {
    return settingsOrInputError(ctx.vars);
  },
  probes: (_p, ctx) => checks(ctx.prepared),
  plan(p, ctx) {
    const st = ctx.prepared;
    const changedBefore = ctx.state.pending;
    return {
      actions: [
        {
          kind: 'check',
          summary: 'verify containerd',
          async run(conn: HostConnection, actx: ApplyContext) {
            const deadline = Date.now() + (changedBefore ? p.settle_seconds * 1000 : 0);
            for (;;) {
              // Nothing changed: judge what the gathering round trip already read. Otherwise read again.
              const fresh = changedBefore ? await runSections(conn, new Map(Object.entries(checks(st)))) : undefined;
              const get = (id: string) => fresh?.get(id) ?? ctx.probe(id);
              const outcome = judge(st, get);
              const cri = outcome.ok ? await criCheck(conn, `${st.runtime.stateDir}/containerd.sock`, p.pull_test) : { lines: [], problems: [] };
              const problems = [...outcome.problems, ...cri.problems];
              if (problems.length === 0) {
                for (const l of [...outcome.lines, ...cri.lines]) actx.note(l);
                return;
              }
              if (Date.now() >= deadline) throw new Error(`verification failed:\n  ${problems.join('\n  ')}`);
              await new Promise((r) => setTimeout(r, 1000));
            }
          },
        },
      ],
    };
  },
});
