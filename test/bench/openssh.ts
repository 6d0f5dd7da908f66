/**
 * The OpenSSH floor: what plain `ssh` takes for the same work, reached the way hoist reaches the hosts
 * (as deploy, through the bastion, sudo on the host). One ControlMaster session to the bastion
 * carries every host's connection as a forwarded channel (`ProxyCommand ssh -W %h:%p bastion`,
 * multiplexed over the master), as hoist shares one bastion session; without it sshd's MaxStartups
 * on the bastion refuses most of a hundred parallel handshakes. Each repeat starts its own master,
 * inside the timing, as each hoist run opens its own bastion session.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FleetInfo } from '../fleet/fleet.js';
import { measure, type Measured } from './measure.js';

export interface FloorRun extends Measured {
  failed: string[];
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class OpenSshFloor {
  private readonly dir: string;
  private readonly config: string;

  constructor(private readonly fleet: FleetInfo) {
    // Short: the control socket's path must fit a sockaddr_un.
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'hb-ssh-'));
    this.config = path.join(this.dir, 'config');
    const f = fleet;
    const lines = [
      'Host bastion',
      `  HostName ${f.bastion.address}`,
      `  ControlPath ${this.dir}/cm-%C`,
      '  ControlMaster auto',
      '  ControlPersist 60',
      ...f.hosts.flatMap((h) => [`Host ${h.name}`, `  HostName ${h.address}`, `  ProxyCommand ssh -F ${this.config} -W %h:%p bastion`, '  ControlMaster no']),
      'Host *',
      '  User deploy',
      `  IdentityFile ${f.identityPath}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${f.knownHostsPath}`,
      '  StrictHostKeyChecking yes',
      '  CheckHostIP no',
      '  BatchMode yes',
      '  LogLevel ERROR',
    ];
    writeFileSync(this.config, `${lines.join('\n')}\n`);
  }

  /** What the floor runs, for the printed notes. */
  static describe(): string {
    return [
      'every host at once: ssh -F <config> hN <command>, through ProxyCommand "ssh -W %h:%p bastion" multiplexed over one ControlMaster',
      "session to the bastion (started inside the timing, as each hoist run opens its own), as deploy, BatchMode, the fleet's key and known_hosts.",
      `no-op: ${VERIFY_COMMAND}`,
      "ping: true (no sudo). push: the cached archive on each ssh's stdin, written through sudo -n to /var/tmp and removed.",
    ].join('\n');
  }

  /**
   * Runs `command` on every host in parallel; `stdinFile` is fed to each. The master stays in the
   * foreground of the timed shell (ControlPersist=no: it doesn't detach), so its CPU counts, and
   * is stopped at the end.
   */
  async run(command: string, stdinFile?: string): Promise<FloorRun> {
    const cfg = this.config;
    const d = mkdtempSync(path.join(this.dir, 'r-'));
    const hosts = this.fleet.hosts.map((h) => h.name);
    const script = `set -u
ssh -F ${q(cfg)} -O exit bastion 2>/dev/null   # a master a killed run left behind
ssh -F ${q(cfg)} -MN -o ControlPersist=no bastion 2>${q(`${d}/master.err`)} &
master=$!
until ssh -F ${q(cfg)} -O check bastion 2>/dev/null; do
  kill -0 $master 2>/dev/null || { echo "bastion master failed: $(cat ${q(`${d}/master.err`)})" >&2; exit 1; }
  sleep 0.01
done
pids=()
for h in ${hosts.join(' ')}; do
  ( ssh -F ${q(cfg)} "$h" ${q(command)} <${stdinFile ? q(stdinFile) : '/dev/null'} >/dev/null 2>${q(d)}/"$h".err; echo $? >${q(d)}/"$h".rc ) &
  pids+=($!)
done
wait "\${pids[@]}"
ssh -F ${q(cfg)} -O exit bastion 2>/dev/null || kill $master 2>/dev/null
wait $master
true`;
    const m = await measure(['bash', '-c', script]);
    const failed: string[] = [];
    if (m.code !== 0) failed.push(m.stderr.trim());
    for (const h of hosts) {
      let rc = 'none';
      try {
        rc = readFileSync(path.join(d, `${h}.rc`), 'utf8').trim();
      } catch {
        // no exit code: the subshell never ran
      }
      if (rc !== '0')
        failed.push(
          `${h}: exit ${rc} ${
            readFileSafe(path.join(d, `${h}.err`))
              .trim()
              .split('\n')
              .pop() ?? ''
          }`,
        );
    }
    return { ...m, failed };
  }
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** The commands hoist's verify runs (containerd_verify's ctr, plugins and dump), through sudo -n. */
export const VERIFY_COMMAND =
  "sudo -n /bin/sh -c '/usr/local/bin/ctr --address /run/containerd/containerd.sock version; " +
  '/usr/local/bin/ctr --address /run/containerd/containerd.sock plugin ls; ' +
  "/usr/local/bin/containerd config dump'";

/** The same bytes hoist pushes, written to a file on the host through sudo, then removed. */
export const PUSH_COMMAND = "sudo -n /bin/sh -c 'cat > /var/tmp/hoist-bench-push && rm -f /var/tmp/hoist-bench-push'";
