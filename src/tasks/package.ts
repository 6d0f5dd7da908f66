import { s } from '../util/schema.js';
import { defineTask } from './types.js';
import { planPackages } from './lib/packages.js';
import { packagesRead } from '../facts/reads.js';

export default defineTask({
  name: 'package',
  summary: 'Packages present or absent, with apt, dnf or yum.',
  params: s.object({
    name: s.list(s.string(/^[A-Za-z0-9][A-Za-z0-9.+_:-]*$/, 'a package name')),
    state: s.enum('present', 'absent').default('present'),
  }),
  probes: (p) => ({ pkgs: packagesRead(p.name) }),
  plan: (p, ctx) => ({ actions: planPackages(p.name, p.state, ctx.facts, ctx.probe('pkgs'), ctx.state) }),
});
