import { s } from '../../../util/schema.js';
import { containerdTask } from '../task.js';
import { planPackages } from '../../../tasks/lib/packages.js';
import { packagesRead } from '../../../facts/reads.js';
import { osProfile, packageCandidates, packageFor } from '../../../facts/os.js';
import { HostError } from '../../../util/errors.js';

export default containerdTask({
  name: 'libseccomp',
  summary: "libseccomp (runc needs it) installed with the host's package manager.",
  params: s.object({}),
  // runc links libseccomp.so.2; the OS layer names its package (libseccomp2 on Debian, libseccomp on RHEL).
  probes: () => ({ pkgs: packagesRead(packageCandidates(['libseccomp'])) }),
  plan(_p, ctx) {
    if (ctx.facts.packageManager === 'none') throw new HostError('no apt, dnf or yum on this host: install libseccomp by hand');
    return { actions: planPackages([packageFor(osProfile(ctx.facts), 'libseccomp')], 'present', ctx.facts, ctx.probe('pkgs'), ctx.state) };
  },
});
