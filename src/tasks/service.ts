import { s } from '../util/schema.js';
import { defineTask } from './types.js';
import { parseServiceProbe, planService, serviceProbes, type ServiceWant } from './lib/systemd.js';
import { HostError } from '../util/errors.js';

const want = (p: { name: string; enabled: boolean; state: ServiceWant['state']; restart_on: string[]; unit_files: string[] }): ServiceWant => ({
  unit: p.name.includes('.') ? p.name : `${p.name}.service`,
  enabled: p.enabled,
  state: p.state,
  restartOn: p.restart_on,
  unitFiles: p.unit_files,
});

export default defineTask({
  name: 'service',
  summary: 'A systemd service enabled and running; restarted when its files differ from those it started with.',
  params: s.object({
    name: s.string(/^[\w@.:-]+$/, 'a systemd unit name'),
    enabled: s.bool().default(true),
    state: s.enum('started', 'stopped', 'restarted').default('started'),
    restart_on: s.list(s.string(/^\//, 'an absolute path')).default([]),
    unit_files: s.list(s.string(/^\//, 'an absolute path')).default([]),
  }),
  probes: (p) => serviceProbes(want(p)),
  plan(p, ctx) {
    if (ctx.facts.init !== 'systemd') throw new HostError(`this host's init is "${ctx.facts.init}", not systemd; hoist manages services with systemd only`);
    return { actions: planService(want(p), parseServiceProbe(ctx.probe, want(p)), ctx.state) };
  },
});
