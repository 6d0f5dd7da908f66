import { parse as parseToml } from 'smol-toml';
import { quote } from '../../../ssh/quote.js';
import { preflightTask } from '../task.js';
import type { NodeSettings } from '../settings.js';

/**
 * kubeadm's ContainerRuntimeCheck (cmd/kubeadm/app/preflight/checks.go: the CRI socket answers) and
 * the cgroup driver agreement the Kubernetes documentation asks for
 * (https://kubernetes.io/docs/setup/production-environment/container-runtimes/#cgroup-drivers): the
 * kubelet and the runtime must use the same driver, or pods fail under the kubelet's cgroups.
 * The runtime's driver is read from the running daemon (`crictl info`: its effective CRI config,
 * imports and drop-ins included), else from `containerd config dump` (the same merge, from the
 * config the running daemon was started with).
 */
export function criScript(st: NodeSettings): string {
  const sock = quote(st.criSocket);
  return [
    `if [ -S ${sock} ]; then echo "socket=yes"; else echo "socket=no"; fi`,
    // A socket file with nobody listening is what a stopped runtime leaves.
    `if grep -qF -- ${quote(` ${st.criSocket}`)} /proc/net/unix; then echo "listening=yes"; else echo "listening=no"; fi`,
    `PATH=$PATH:/usr/local/bin:/usr/local/sbin`,
    `if command -v crictl >/dev/null; then echo "@@crictl"; timeout 15 crictl --timeout 10s --runtime-endpoint unix://${sock} info 2>&1; echo "@@rc=$?";`,
    // The config file the daemon runs with: its --config/-c, else containerd's default.
    `elif command -v containerd >/dev/null; then c=/etc/containerd/config.toml; p=$(systemctl show -p MainPID --value containerd 2>/dev/null); prev=; if [ -n "$p" ] && [ "$p" != 0 ]; then while IFS= read -r -d '' a; do case $prev in --config|-c) c=$a ;; esac; case $a in --config=*) c=\${a#--config=} ;; esac; prev=$a; done < /proc/$p/cmdline; fi; echo "@@dump"; containerd --config "$c" config dump 2>&1; echo "@@rc=$?"; fi`,
  ].join('\n');
}

/** SystemdCgroup of the default runtime in `crictl info`'s JSON; undefined when the JSON has no CRI config. */
export function driverFromCrictl(json: string): 'systemd' | 'cgroupfs' | undefined {
  let info: unknown;
  try {
    info = JSON.parse(json);
  } catch {
    return undefined;
  }
  const containerd = at(info, ['config', 'containerd']);
  if (!isObject(containerd)) return undefined;
  const name = typeof containerd.defaultRuntimeName === 'string' ? containerd.defaultRuntimeName : 'runc';
  const options = at(containerd, ['runtimes', name, 'options']);
  return isObject(options) && options.SystemdCgroup === true ? 'systemd' : 'cgroupfs';
}

/** SystemdCgroup of the default runtime in `containerd config dump` (containerd 1.x and 2.x layouts); undefined when it has no CRI plugin. */
export function driverFromDump(toml: string): 'systemd' | 'cgroupfs' | undefined {
  let cfg: unknown;
  try {
    cfg = parseToml(toml);
  } catch {
    return undefined;
  }
  for (const plugin of ['io.containerd.cri.v1.runtime', 'io.containerd.grpc.v1.cri']) {
    const containerd = at(cfg, ['plugins', plugin, 'containerd']);
    if (!isObject(containerd)) continue;
    const name = typeof containerd.default_runtime_name === 'string' ? containerd.default_runtime_name : 'runc';
    const options = at(containerd, ['runtimes', name, 'options']);
    return isObject(options) && options.SystemdCgroup === true ? 'systemd' : 'cgroupfs';
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function at(v: unknown, keys: string[]): unknown {
  for (const k of keys) v = isObject(v) ? v[k] : undefined;
  return v;
}

/** Each failed check names what is wrong and the fix. */
export function judgeCri(st: NodeSettings, out: string): { lines: string[]; problems: string[] } {
  const problems: string[] = [];
  const sock = st.criSocket;
  const socket = /^socket=yes$/m.test(out);
  const listening = /^listening=yes$/m.test(out);
  const body = (mark: string) => {
    const m = new RegExp(`^@@${mark}\\n([\\s\\S]*?)\\n?@@rc=(\\d+)$`, 'm').exec(out);
    return m ? { text: m[1], rc: Number(m[2]) } : undefined;
  };
  const crictl = body('crictl');
  const dump = body('dump');
  if (!socket || !listening) {
    problems.push(
      `the container runtime's socket ${sock} ${socket ? 'exists but nothing listens on it' : 'does not exist'}: start the runtime (systemctl start containerd), or install it (playbooks/node.toml); node_cri_socket names another runtime's`,
    );
    return { lines: [], problems };
  }
  if (crictl && crictl.rc !== 0)
    problems.push(`the container runtime does not answer on ${sock} (crictl info: ${crictl.text.trim().split('\n').pop()}): check journalctl -u containerd`);
  const have = crictl?.rc === 0 ? driverFromCrictl(crictl.text) : dump?.rc === 0 ? driverFromDump(dump.text) : undefined;
  const from = crictl ? 'crictl info' : 'containerd config dump';
  if (!crictl && !dump) problems.push("neither crictl nor containerd is on this host: the runtime's cgroup driver could not be read");
  else if (!have && !problems.length)
    problems.push(`the runtime's cgroup driver could not be read (${from}: no CRI plugin configuration): is the CRI plugin disabled in containerd's config?`);
  else if (have && have !== st.cgroupDriver) {
    problems.push(
      `the runtime uses the ${have} cgroup driver (SystemdCgroup = ${have === 'systemd'}, ${from}) but the kubelet will use ${st.cgroupDriver} (kubelet_cgroup_driver): ` +
        `set systemd_cgroup = ${st.cgroupDriver === 'systemd'} for the containerd module${st.cgroupDriver === 'systemd' ? '' : ', or kubelet_cgroup_driver = "systemd" with cgroupDriver: systemd in the kubelet\'s configuration'}`,
    );
  }
  return { lines: problems.length ? [] : [`container runtime ready: ${sock} answers, cgroup driver ${have} as the kubelet's`], problems };
}

export default preflightTask({
  name: 'kubernetes_node_cri_preflight',
  summary:
    "Checks the container runtime as kubeadm's preflight would: its CRI socket answers, and its cgroup driver (SystemdCgroup) is the kubelet's (kubelet_cgroup_driver). Read-only; `hoist verify` runs it; put it after the runtime is installed.",
  check: 'container runtime preflight',
  script: criScript,
  judge: judgeCri,
});
