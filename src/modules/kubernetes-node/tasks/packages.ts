import { s } from '../../../util/schema.js';
import { packagesRead } from '../../../facts/reads.js';
import { needOfCommand, osProfile, packageCandidates, packageFor, type Need } from '../../../facts/os.js';
import { planPackages } from '../../../tasks/lib/packages.js';
import { nodeTask } from '../task.js';
import type { NodeSettings } from '../settings.js';

/** The needs behind the commands the node must have (settings refused a command with none, unless node_packages names the packages). */
function needs(st: NodeSettings): Need[] {
  return st.commands.map(needOfCommand).filter((n): n is Need => n !== undefined);
}

export default nodeTask({
  name: 'kubernetes_node_packages',
  summary:
    "The packages of the commands a node needs (node_commands: ip, iptables, mount, nsenter), named for the host's distribution family; node_packages names them outright.",
  params: s.object({}),
  // The probe is built before the facts are read, so it asks for every family's names at once.
  probes: (_p, ctx) => ({ pkgs: packagesRead(ctx.settings.packages ?? packageCandidates(needs(ctx.settings))) }),
  plan(_p, ctx) {
    const profile = osProfile(ctx.facts);
    const names = ctx.settings.packages ?? [...new Set(needs(ctx.settings).map((n) => packageFor(profile, n)))];
    return { actions: planPackages(names, 'present', ctx.facts, ctx.probe('pkgs'), ctx.state) };
  },
});
