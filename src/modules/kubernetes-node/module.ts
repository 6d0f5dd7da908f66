import { defineModule } from '../../tasks/types.js';
import { nodeSettings, nodeVariables } from './settings.js';
import preflight from './tasks/preflight.js';
import criPreflight from './tasks/cri-preflight.js';
import packages from './tasks/packages.js';
import { uniqueAcrossFleet } from './fleet.js';

/**
 * A Linux host made ready for `kubeadm join`, as the Kubernetes documentation asks:
 *
 * - IPv4 packet forwarding (net.ipv4.ip_forward = 1):
 *   https://kubernetes.io/docs/setup/production-environment/container-runtimes/#prerequisite-ipv4-forwarding-optional
 * - br_netfilter loaded and net.bridge.bridge-nf-call-iptables/ip6tables = 1, so iptables sees
 *   bridged traffic: https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/network-plugins/#network-plugin-requirements
 *   and https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/ ("Letting iptables see bridged traffic")
 * - overlay loaded, for containerd's overlayfs snapshotter: https://github.com/containerd/containerd/blob/main/docs/getting-started.md
 * - swap off, and kept off across reboots ("You MUST disable swap"):
 *   https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/#before-you-begin
 * - the kubelet API port free (10250): https://kubernetes.io/docs/reference/networking/ports-and-protocols/
 * - the commands kubeadm's preflight requires (ip, iptables, mount, nsenter; conntrack before
 *   Kubernetes 1.32): kubernetes/kubernetes cmd/kubeadm/app/preflight/checks_linux.go
 * - the rest of what kubeadm's preflight checks for a joining node before kubeadm is installed
 *   (JoinNodeChecks and addCommonChecks in kubernetes/kubernetes cmd/kubeadm/app/preflight/checks.go,
 *   the Linux checks in checks_linux.go): the cgroup controllers of SystemVerificationCheck
 *   (kubernetes/system-validators validators/cgroup_validator.go: cpu, cpuacct, cpuset, devices,
 *   freezer, memory, pids on v1; cpu, cpuset, memory, pids on v2, devices and freezer implicit),
 *   FileAvailableCheck of kubelet.conf, bootstrap-kubelet.conf and the CA certificate, and
 *   ContainerRuntimeCheck (the CRI socket), with the runtime's cgroup driver matching the kubelet's:
 *   https://kubernetes.io/docs/setup/production-environment/container-runtimes/#cgroup-drivers.
 *   IsPrivilegedUser, KubeletVersion and the kubelet service checks need kubeadm and its kubelet
 *   installed, and are left to kubeadm.
 * - hostname, MAC addresses and product_uuid unique across the fleet, and clocks within 1 s of the
 *   fleet's median (`hoist verify`):
 *   https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/#verify-mac-address
 * - a container runtime with the systemd cgroup driver: the containerd module (playbooks/node.toml
 *   runs both): https://kubernetes.io/docs/setup/production-environment/container-runtimes/#containerd-systemd
 *
 * The changes are the engine's own tasks (kernel_module, sysctl, swap) with this module's
 * variables (playbooks/kubernetes-node.toml); the module adds the variables, the checks across
 * them, the packages of the commands a node needs (named for the host's distribution by the OS
 * layer, src/facts/os.ts) and the preflights that `hoist verify` runs (the node's, and the
 * container runtime's, which playbooks/node.toml runs once containerd is up).
 */
export const kubernetesNodeModule = defineModule({
  name: 'kubernetes-node',
  variables: nodeVariables,
  settings: nodeSettings,
  tasks: [packages, preflight, criPreflight],
  fleetChecks: uniqueAcrossFleet,
});
