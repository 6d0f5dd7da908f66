import { HOIST_STATE_DIR } from '../host-paths.js';
import type { ClockReading } from './clock.js';

/** What hoist knows about a host before planning anything; gathered in the same round trip as every task's probes. */
export interface Facts {
  hostname: string;
  osId: string;
  osIdLike: string[];
  osVersion: string;
  osPrettyName: string;
  arch: string;
  kernel: string;
  /** The name of PID 1: "systemd" on every host hoist can manage services on. */
  init: string;
  /** `systemctl is-system-running`, read only when asked for (`hoist facts`): nothing plans from it. */
  systemdState?: string;
  packageManager: 'apt' | 'dnf' | 'yum' | 'none';
  cgroupVersion: 1 | 2;
  uid: number;
  diskFreeKb: Record<string, number>;
  tools: Record<string, boolean>;
  /** The machine's DMI product_uuid, where the host has one (not in containers). */
  productUuid?: string;
  /** MAC addresses of the host's network interfaces, by interface (not loopback, nor the bridges and veths container runtimes make). */
  macs?: Record<string, string>;
  /** The host's clock against the controller's, measured in the gathering round trip (facts/clock.ts). */
  clock?: ClockReading;
}

const TOOLS = ['tar', 'sha256sum', 'install', 'systemctl', 'gzip', 'sudo'];
/** Where free space is read: each directory, or its nearest existing parent. */
const DF_DIRS = ['/', '/usr/local', '/var/lib', HOIST_STATE_DIR, '/tmp'];

/**
 * Shell run on the host; prints key=value lines. It must not fail, whatever the host lacks. It runs
 * on every host of every run, so it reads with bash builtins where it can and calls df and uname
 * once each: every process it starts is CPU the host spends before a no-op can end.
 */
export const FACTS_SCRIPT = `
. /etc/os-release 2>/dev/null
echo "os_id=\${ID:-unknown}"
echo "os_id_like=\${ID_LIKE:-}"
echo "os_version=\${VERSION_ID:-}"
echo "os_pretty=\${PRETTY_NAME:-}"
read -r hn < /proc/sys/kernel/hostname; echo "hostname=$hn"
u=$(uname -rm); echo "arch=\${u#* }"; echo "kernel=\${u%% *}"
read -r init < /proc/1/comm; echo "init=$init"
if command -v apt-get >/dev/null; then echo pm=apt; elif command -v dnf >/dev/null; then echo pm=dnf; elif command -v yum >/dev/null; then echo pm=yum; else echo pm=none; fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo cgroup=2; else echo cgroup=1; fi
echo "uid=$EUID"
if [ -r /sys/class/dmi/id/product_uuid ]; then read -r pu < /sys/class/dmi/id/product_uuid && echo "product_uuid=$pu"; fi
for n in /sys/class/net/*; do i=\${n##*/}; case $i in lo|veth*|cni*|hoist*|docker*|flannel*|cali*|tunl*|kube-*|cilium*|vxlan*|'*') continue ;; esac; a=; read -r a < "$n/address" 2>/dev/null; [ -n "$a" ] && [ "$a" != 00:00:00:00:00:00 ] && echo "mac_$i=$a"; done
for t in ${TOOLS.join(' ')}; do if command -v $t >/dev/null; then echo "tool_$t=1"; else echo "tool_$t=0"; fi; done
dirs="${DF_DIRS.join(' ')}"; set --
for d in $dirs; do p=$d; while [ ! -e "$p" ]; do p=\${p%/*}; p=\${p:-/}; done; set -- "$@" "$p"; done
# df's lines come in the order of its arguments.
df -Pk "$@" 2>/dev/null | { read -r; d=($dirs); i=0; while read -r _ _ _ free _; do echo "df_\${d[i++]}=$free"; done; }
`;

/** Appended to FACTS_SCRIPT when systemd's state is asked for: a systemctl costs a host ~12 ms of CPU, systemd's answer included. */
export const SYSTEM_STATE = `echo "systemd_state=$(systemctl is-system-running 2>/dev/null)"\n`;

export function parseFacts(out: string): Facts {
  const kv = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const pm = kv.get('pm');
  const tools: Record<string, boolean> = {};
  const diskFreeKb: Record<string, number> = {};
  const macs: Record<string, string> = {};
  for (const [k, v] of kv) {
    if (k.startsWith('mac_')) macs[k.slice(4)] = v.toLowerCase();
    if (k.startsWith('tool_')) tools[k.slice(5)] = v === '1';
    if (k.startsWith('df_') && v) diskFreeKb[k.slice(3)] = Number(v);
  }
  return {
    hostname: kv.get('hostname') ?? '',
    osId: kv.get('os_id') ?? 'unknown',
    osIdLike: (kv.get('os_id_like') ?? '').split(/\s+/).filter(Boolean),
    osVersion: kv.get('os_version') ?? '',
    osPrettyName: kv.get('os_pretty') ?? '',
    arch: kv.get('arch') ?? '',
    kernel: kv.get('kernel') ?? '',
    init: kv.get('init') ?? '',
    ...(kv.has('systemd_state') ? { systemdState: kv.get('systemd_state') } : {}),
    packageManager: pm === 'apt' || pm === 'dnf' || pm === 'yum' ? pm : 'none',
    cgroupVersion: kv.get('cgroup') === '2' ? 2 : 1,
    uid: Number(kv.get('uid') ?? -1),
    diskFreeKb,
    tools,
    ...(kv.get('product_uuid') ? { productUuid: kv.get('product_uuid')!.toLowerCase() } : {}),
    macs,
  };
}

/** "amd64" as release assets name it. */
export function releaseArch(f: Facts): string {
  return f.arch === 'x86_64' ? 'amd64' : f.arch === 'aarch64' ? 'arm64' : f.arch;
}
