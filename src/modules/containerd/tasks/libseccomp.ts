import { s } from '../../../util/schema.js';
import { containerdTask } from '../task.js';
import { planPackages } from '../../../tasks/lib/packages.js';
import { packagesRead } from '../../../facts/reads.js';

/** runc links libseccomp.so.2; Debian and RHEL name the package differently. */
const NAMES = { apt: 'libseccomp2', dnf: 'libseccomp', yum: 'libseccomp' } as const;

export default containerdTask({
  name: 'libseccomp',
  summary: 'libseccomp (runc needs it) installed with the host\'s package manager.',
  params: s.object({}),
  probes: () => ({ pkgs: packagesRead([...new Set(Object.values(NAMES))]) }),
  plan(_p, ctx) {
    const pm = ctx.facts.packageManager;
    if (pm === 'none') throw new Error('no apt, dnf or yum on this host: install libseccomp by hand');
    return { actions: planPackages([NAMES[pm]], 'present', ctx.facts, ctx.probe('pkgs'), ctx.state) };
  },
});
