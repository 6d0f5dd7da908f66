import { s } from '../../../util/schema.js';
import { armFilesRollback } from '../rollback.js';
import { containerdTask } from '../task.js';
import { daemonSettling, previousVersion, stampBefore } from '../slots.js';
import { fileProbe, parseFileProbe, planFile } from '../../../tasks/lib/files.js';
import { parseServiceProbe, planService, serviceProbes, type ServiceWant } from '../../../tasks/lib/systemd.js';
import { registryPaths, renderUnit } from '../render.js';
import { CONFIG_FILE, INSTALL_RECORD, UNIT_FILE } from '../paths.js';
import { HostError } from '../../../util/errors.js';

export default containerdTask({
  name: 'containerd_service',
  summary:
    'containerd.service for the target line, enabled and running; restarted only when a binary, the config, a registry file or the unit differs from what it started with.',
  params: s.object({}),
  provides: [stampBefore, daemonSettling],
  async prepare(_p, ctx) {
    const st = ctx.settings;
    // hosts.toml files and pushed certificates are read by containerd at start-up and on pulls; a change to them means a restart.
    const registry = registryPaths(st.runtime);
    return { unit: renderUnit(st.runtime.version), want: want(registry) };
  },
  probes: (_p, ctx) => ({
    unit: fileProbe(UNIT_FILE, ctx.options.diff),
    ...serviceProbes(ctx.prepared.want),
  }),
  plan(_p, ctx) {
    if (ctx.facts.init !== 'systemd') throw new HostError(`this host's init is "${ctx.facts.init}", not systemd; hoist runs containerd under systemd only`);
    const actions = [];
    const unit = planFile({ path: UNIT_FILE, content: Buffer.from(ctx.prepared.unit), mode: 0o644 }, parseFileProbe(ctx.probe('unit')), ctx.state, ctx.options);
    if (unit) actions.push(unit);
    const w = ctx.prepared.want;
    const have = parseServiceProbe(ctx.probe, w);
    if (have.stamp) stampBefore.put(ctx.state, have.stamp);
    if (actions.length) armFilesRollback(ctx.state, previousVersion.peek(ctx.state), [UNIT_FILE]);
    const svc = planService(w, have, ctx.state);
    if (have.active !== 'active' || svc.length) daemonSettling.put(ctx.state, true);
    return { actions: [...actions, ...svc] };
  },
});

function want(registryFiles: string[]): ServiceWant {
  return {
    unit: 'containerd.service',
    enabled: true,
    state: 'started',
    restartOn: [INSTALL_RECORD, CONFIG_FILE, UNIT_FILE, ...registryFiles],
    unitFiles: [UNIT_FILE],
  };
}
