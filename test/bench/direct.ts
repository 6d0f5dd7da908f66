/**
 * The direct path, for hoist and for the leanest OpenSSH floor alike: root straight to each host,
 * no bastion, no sudo; optionally through the delaying relays (--rtt), which both then dial.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FleetInfo } from '../fleet/fleet.js';
import { measure } from './measure.js';
import type { FloorRun } from './openssh.js';
import type { Relay } from './delay-relay.js';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** What hoist's verification runs on the host, as root: the floor's no-op without sudo. */
export const DIRECT_VERIFY_COMMAND =
  '/usr/local/bin/ctr --address /run/containerd/containerd.sock version; ' +
  '/usr/local/bin/ctr --address /run/containerd/containerd.sock plugin ls; ' +
  '/usr/local/bin/containerd config dump';

export interface DirectPath {
  /** The root inventory, rewritten to the relays' ports when there are relays. */
  inventory: string;
  floor: (command: string) => Promise<FloorRun>;
}

/** Its files go in `parent` (the run's own directory), else the system's temporary directory. */
export function directPath(info: FleetInfo, relay?: Relay, parent = os.tmpdir()): DirectPath {
  const dir = mkdtempSync(path.join(parent, 'hb-direct-'));
  const at = (h: { name: string; address: string }) => (relay ? { host: '127.0.0.1', port: relay.ports.get(h.name)! } : { host: h.address, port: 22 });
  // The hosts' own keys, under the name and port they are dialled at.
  const keys = readFileSync(info.knownHostsPath, 'utf8').split('\n').filter(Boolean);
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(
    knownHosts,
    info.hosts
      .flatMap((h) => {
        const { host, port } = at(h);
        const name = port === 22 ? host : `[${host}]:${port}`;
        return keys.filter((l) => l.split(' ')[0] === h.address).map((l) => `${name} ${l.split(' ').slice(1).join(' ')}`);
      })
      .join('\n') + '\n',
  );
  let inv = readFileSync(info.rootInventoryPath, 'utf8').replace(/^known_hosts_file = .*$/m, `known_hosts_file = ${JSON.stringify(knownHosts)}`);
  for (const h of info.hosts) {
    const { host, port } = at(h);
    inv = inv.replace(`[hosts.${h.name}]\naddress = "${h.address}"`, `[hosts.${h.name}]\naddress = "${host}"\nport = ${port}`);
  }
  const inventory = path.join(dir, 'inventory.toml');
  writeFileSync(inventory, inv);
  const config = path.join(dir, 'config');
  writeFileSync(
    config,
    [
      ...info.hosts.flatMap((h) => [`Host ${h.name}`, `  HostName ${at(h).host}`, `  Port ${at(h).port}`]),
      'Host *',
      '  User root',
      `  IdentityFile ${info.identityPath}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHosts}`,
      '  StrictHostKeyChecking yes',
      '  CheckHostIP no',
      '  BatchMode yes',
      '  LogLevel ERROR',
    ].join('\n') + '\n',
  );
  const floor = async (command: string): Promise<FloorRun> => {
    const d = mkdtempSync(path.join(dir, 'r-'));
    const script = `pids=()
for h in ${info.hosts.map((h) => h.name).join(' ')}; do
  ( ssh -F ${q(config)} "$h" ${q(command)} </dev/null >/dev/null 2>${q(d)}/"$h".err; echo $? >${q(d)}/"$h".rc ) &
  pids+=($!)
done
wait "\${pids[@]}"`;
    const m = await measure(['bash', '-c', script]);
    const failed = info.hosts
      .map((h) => {
        let rc = 'none';
        try {
          rc = readFileSync(path.join(d, `${h.name}.rc`), 'utf8').trim();
        } catch {
          // the subshell never ran
        }
        return rc === '0' ? '' : `${h.name}: exit ${rc}`;
      })
      .filter(Boolean);
    return { ...m, failed };
  };
  return { inventory, floor };
}
