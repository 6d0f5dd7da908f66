import { s, type InferShape } from '../../util/schema.js';
import type { SettingsIssue } from '../../tasks/types.js';
import { needOfCommand } from '../../facts/os.js';

/**
 * The variables of the kubernetes-node module. Every one is optional: playbooks/kubernetes-node.toml
 * sets the values the Kubernetes documentation asks for in its [defaults].
 */
export const nodeVariables = {
  node_kernel_modules: s
    .list(s.string(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'a kernel module name'))
    .optional()
    .describe('kernel modules loaded now and at boot (overlay, br_netfilter)'),
  node_sysctls: s
    .record(s.union<string | number>('a number or a string', s.int(), s.string(/^[^\n\r]*\S[^\n\r]*$/, 'one line of text')))
    .optional()
    .describe('kernel parameters for a node (IPv4 forwarding, bridge netfilter)'),
  node_packages: s
    .list(s.string(/^[A-Za-z0-9][A-Za-z0-9.+_:-]*$/, 'a package name'))
    .optional()
    .describe('packages to install instead of those the OS layer names for node_commands'),
  node_ports: s.list(s.int(1, 65535)).optional().describe("TCP ports the node's Kubernetes components listen on, which must be free (10250: the kubelet API)"),
  node_cri_socket: s
    .string(/^\/[^\s'"\\]*$/, 'an absolute path')
    .optional()
    .describe("the container runtime's CRI socket, which the preflight reaches (default /run/containerd/containerd.sock)"),
  kubelet_cgroup_driver: s
    .enum('systemd', 'cgroupfs')
    .optional()
    .describe("the cgroup driver the kubelet will use (kubeadm's default: systemd); the preflight checks the runtime uses the same one"),
  node_commands: s
    .list(s.string(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'a command name'))
    .optional()
    .describe(
      "commands a node needs (kubeadm preflight: ip, iptables, mount, nsenter): installed with the package the host's distribution names, and checked by the preflight",
    ),
};

export interface NodeSettings {
  modules: string[];
  sysctls: Record<string, string | number>;
  ports: number[];
  commands: string[];
  criSocket: string;
  cgroupDriver: 'systemd' | 'cgroupfs';
  /** Packages named outright (node_packages), else undefined: the OS layer names them from `commands`. */
  packages?: string[];
}

/** What the preflight check expects of a node, from the host's variables (defaults: the kubeadm requirements). */
export function nodeSettings(v: InferShape<typeof nodeVariables>, report: (i: SettingsIssue) => void): NodeSettings {
  const sysctls = v.node_sysctls ?? {};
  const modules = v.node_kernel_modules ?? [];
  if (Object.keys(sysctls).some((k) => k.startsWith('net.bridge.')) && !modules.some((m) => m.replace(/-/g, '_') === 'br_netfilter')) {
    report({ path: ['node_kernel_modules'], message: 'net.bridge.* parameters in node_sysctls need br_netfilter among node_kernel_modules' });
  }
  const commands = v.node_commands ?? ['ip', 'iptables', 'mount', 'nsenter'];
  const unknown = commands.filter((c) => !needOfCommand(c));
  if (unknown.length && !v.node_packages) {
    report({ path: ['node_commands'], message: `hoist knows no package for command ${unknown.join(', ')}: name the packages in node_packages` });
  }
  return {
    modules,
    sysctls,
    ports: v.node_ports ?? [10250],
    commands,
    criSocket: v.node_cri_socket ?? '/run/containerd/containerd.sock',
    cgroupDriver: v.kubelet_cgroup_driver ?? 'systemd',
    packages: v.node_packages,
  };
}
