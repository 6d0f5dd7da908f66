import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAptRepo } from './apt-repo.js';
import { ensureBaseImage } from './base-image.js';
import { findFleetCgroups, removeCgroups } from './cgroups.js';
import {
  bootHost,
  ensureHostKey,
  haltHost,
  mountHostRoot,
  processGone,
  setupHostStorage,
  waitHostReady,
  wipeHost,
  writeHostFiles,
  type FleetHost,
  type HostRuntime,
} from './hosts.js';
import { installIdentity } from './identity.js';
import { renderInventory } from './inventory.js';
import { ensureKernelLimits } from './limits.js';
import { ensureMirror, type MirrorRelease } from './mirror.js';
import {
  createHostNetwork,
  deleteHostNetwork,
  enableForwarding,
  listFleetAddresses,
  listFleetNetworks,
  listForwardingRules,
  removeAllFleetNetworks,
  restoreForwarding,
  setHostLink,
} from './network.js';
import { ensureOciImage } from './oci-image.js';
import {
  CACHE_DIR,
  HOSTKEYS_DIR,
  HOSTS_DIR,
  IDENTITY_PATH,
  INSTANCE,
  INVENTORY_PATH,
  KNOWN_HOSTS_PATH,
  MAX_HOSTS,
  OPS_PASSWORD_PATH,
  REGISTRIES_DIR,
  REPO_ROOT,
  ROOT_INVENTORY_PATH,
  SERVER_LOG_PATH,
  SERVER_PID_PATH,
  SERVER_PORT_PATH,
  SERVE_SCRIPT,
  STATE_DIR,
  STATE_FILE,
  hostAddress,
  hostGateway,
  hostIndex,
  hostName,
} from './paths.js';
import { isFleetRegistryProcess, startRegistries, type FleetRegistries } from './registries.js';
import { listenOn } from './serve.js';
import { $, log, pidAlive, sleep, waitFor } from './sh.js';

export type { FleetHost } from './hosts.js';
export type { MirrorRelease } from './mirror.js';
export type { FleetRegistries, FleetRegistry, FleetPki } from './registries.js';

export interface FleetInfo {
  /** h1..hN: the machines hoist provisions. */
  hosts: FleetHost[];
  /** The jump host (index 0); only deploy may log in there, and only it may reach the hosts as deploy/ops/nosudo. */
  bastion: FleetHost;
  stateDir: string;
  /** Operator setup: deploy, become, jump through the bastion. */
  inventoryPath: string;
  /** root straight to each host, no become, no jump. */
  rootInventoryPath: string;
  /** bastion and every host. */
  knownHostsPath: string;
  identityPath: string;
  /** File holding ops's sudo password (0600); ops's sudo asks for it, deploy's doesn't, nosudo has none. */
  opsPasswordFile: string;
  /** Release mirror base as seen from the controller. */
  mirrorUrl: string;
  /** The same server as seen from inside the hosts. */
  mirrorUrlForHosts: string;
  /** Flat apt repo as seen from the hosts. */
  aptRepoUrl: string;
  ociImagePath: string;
  ociImageName: string;
  releases: MirrorRelease[];
}

interface Prepared {
  baseDir: string;
  aptDir: string;
  mirrorDir: string;
  releases: MirrorRelease[];
  ociImagePath: string;
  ociImageName: string;
}

interface FleetState {
  info: FleetInfo;
  prepared: Prepared;
  port: number;
  serverPid: number;
  /** net.ipv4.ip_forward as found at up, and whether this up turned it on. */
  forwarding: { previous: string; changed: boolean };
  /** null while the host is stopped. */
  runtime: Record<string, HostRuntime | null>;
}

function readState(): FleetState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as FleetState;
}

function writeState(s: FleetState): void {
  writeFileSync(`${STATE_FILE}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${STATE_FILE}.tmp`, STATE_FILE);
}

function requireState(): FleetState {
  const s = readState();
  if (!s) throw new Error(`fleet${INSTANCE === 1 ? '' : ` instance ${INSTANCE}`} is not up (no ${STATE_FILE}); run: npm run fleet -- up 3`);
  if (!pidAlive(s.serverPid) || processGone(s.serverPid)) throw new Error('fleet state is stale (its HTTP server is gone); run up again');
  return s;
}

/**
 * The cache is shared by every fleet instance on the machine: two builds of the same image at once
 * would delete each other's work (and a mounted /proc under it). One process builds; the others wait.
 */
async function withCacheLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const lock = join(CACHE_DIR, 'prepare.lock');
  for (let waited = 0; ; waited += 500) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch {
      const holder = Number(readFileSync(lock, 'utf8').trim());
      if (!holder || !pidAlive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (waited % 30_000 === 0) log(`waiting for process ${holder} to finish preparing the cache`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

async function prepareAll(): Promise<Prepared> {
  return withCacheLock(prepareUnlocked);
}

async function prepareUnlocked(): Promise<Prepared> {
  const base = await ensureBaseImage();
  const [oci, aptDir] = await Promise.all([ensureOciImage(), ensureAptRepo(base)]);
  const mirror = await ensureMirror();
  // Package indexes of the private apt configurations (≈1.5 GB with every suite) are only needed while building.
  rmSync(join(CACHE_DIR, 'apt-env'), { recursive: true, force: true });
  return { baseDir: base.dir, aptDir, mirrorDir: mirror.dir, releases: mirror.releases, ociImagePath: oci.path, ociImageName: oci.name };
}

/** Build (or find cached) base image, apt repo, release mirror and OCI image. */
export async function prepare(): Promise<void> {
  await prepareAll();
}

function fleetHost(index: number): FleetHost {
  return { name: hostName(index), index, address: hostAddress(index), gateway: hostGateway(index) };
}

async function startServer(p: Prepared, gateways: string[]): Promise<{ pid: number; port: number }> {
  rmSync(SERVER_PORT_PATH, { force: true });
  const out = openSync(SERVER_LOG_PATH, 'a');
  const args = ['--import', 'tsx', SERVE_SCRIPT, '--route', `/=${p.mirrorDir}`, '--route', `/apt=${p.aptDir}`, '--port-file', SERVER_PORT_PATH];
  for (const g of gateways) args.push('--address', g);
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error('could not start the fleet HTTP server');
  writeFileSync(SERVER_PID_PATH, `${child.pid}\n`);
  const pid = child.pid;
  const port = await waitFor(
    'the fleet HTTP server',
    20_000,
    async () => {
      if (processGone(pid)) throw new Error(`fleet HTTP server exited; see ${SERVER_LOG_PATH}`);
      return existsSync(SERVER_PORT_PATH) ? Number(readFileSync(SERVER_PORT_PATH, 'utf8').trim()) : undefined;
    },
    50,
  );
  return { pid, port };
}

async function startOne(host: FleetHost, s: FleetState): Promise<HostRuntime> {
  await setupHostStorage(host.name);
  writeHostFiles(host, s.port);
  await mountHostRoot(host.name, s.prepared.baseDir);
  await setHostLink(host.index, true);
  const { nspawnPid, cgroups } = await bootHost(host);
  const systemState = await waitHostReady(host, nspawnPid);
  return { nspawnPid, cgroups, systemState };
}

/**
 * Hosts booting at once. Boot is CPU-bound (systemd and sshd start in every host) on a controller with
 * few cores; an unbounded start of 100 hosts makes each one slower than the queue would. Measured in
 * test/fleet/README.md.
 */
const BOOT_PARALLEL = Number(process.env.HOIST_FLEET_BOOT_PARALLEL ?? 16);

async function inPool<T>(items: T[], limit: number, f: (item: T) => Promise<void>): Promise<PromiseSettledResult<void>[]> {
  const results: PromiseSettledResult<void>[] = new Array<PromiseSettledResult<void>>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        await f(items[i]);
        results[i] = { status: 'fulfilled', value: undefined };
      } catch (e) {
        results[i] = { status: 'rejected', reason: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

function allHosts(info: FleetInfo): FleetHost[] {
  // A state file from before the bastion existed has none.
  return [...((info as Partial<FleetInfo>).bastion ? [info.bastion] : []), ...info.hosts];
}

/** Bring up `n` hosts (h1..hN) and the bastion. Cleans up whatever a crashed or earlier run left first. */
export async function up(n: number): Promise<FleetInfo> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new Error(`host count must be 1..${MAX_HOSTS}, got ${n}`);
  if (!Number.isInteger(BOOT_PARALLEL) || BOOT_PARALLEL < 1)
    throw new Error(`HOIST_FLEET_BOOT_PARALLEL must be a positive integer, got ${process.env.HOIST_FLEET_BOOT_PARALLEL}`);
  const t0 = Date.now();
  await cleanup({ graceful: true });
  ensureKernelLimits(n + 1);
  const prepared = await prepareAll();
  const tPrepared = Date.now();
  mkdirSync(STATE_DIR, { recursive: true });
  await installIdentity();
  const bastion = fleetHost(0);
  const hosts = Array.from({ length: n }, (_, i) => fleetHost(i + 1));
  const everyHost = [bastion, ...hosts];
  const hostKeys = await Promise.all(everyHost.map((h) => ensureHostKey(h.name)));
  writeFileSync(KNOWN_HOSTS_PATH, everyHost.map((h, i) => `${h.address} ${hostKeys[i]}\n`).join(''));
  for (const h of everyHost) await createHostNetwork(h.index);
  const forwarding = await enableForwarding();
  const server = await startServer(
    prepared,
    everyHost.map((h) => h.gateway),
  );
  const mirrorUrl = `http://127.0.0.1:${server.port}`;
  const info: FleetInfo = {
    hosts,
    bastion,
    stateDir: STATE_DIR,
    inventoryPath: INVENTORY_PATH,
    rootInventoryPath: ROOT_INVENTORY_PATH,
    knownHostsPath: KNOWN_HOSTS_PATH,
    identityPath: IDENTITY_PATH,
    opsPasswordFile: OPS_PASSWORD_PATH,
    mirrorUrl,
    mirrorUrlForHosts: `http://${hosts[0].gateway}:${server.port}`,
    aptRepoUrl: `http://${hosts[0].gateway}:${server.port}/apt`,
    ociImagePath: prepared.ociImagePath,
    ociImageName: prepared.ociImageName,
    releases: prepared.releases,
  };
  const state: FleetState = {
    info,
    prepared,
    port: server.port,
    serverPid: server.pid,
    forwarding,
    runtime: Object.fromEntries(everyHost.map((h) => [h.name, null])),
  };
  writeState(state);
  mkdirSync(join(INVENTORY_PATH, '..'), { recursive: true });
  const inv = { hosts, bastion, identityPath: IDENTITY_PATH, knownHostsPath: KNOWN_HOSTS_PATH, mirrorUrl, port: server.port };
  writeFileSync(INVENTORY_PATH, renderInventory('operator', inv));
  writeFileSync(ROOT_INVENTORY_PATH, renderInventory('root', inv));

  const results = await inPool(everyHost, BOOT_PARALLEL, async (h) => {
    state.runtime[h.name] = await startOne(h, state);
    writeState(state);
  });
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${everyHost[i].name}: ${String(r.reason)}`] : []));
  if (failed.length) throw new Error(`fleet up failed:\n${failed.join('\n')}`);
  const states = new Map<string, string[]>();
  for (const h of everyHost) {
    const st = state.runtime[h.name]?.systemState ?? '?';
    states.set(st, [...(states.get(st) ?? []), h.name]);
  }
  const summary = [...states].map(([st, names]) => (names.length > 8 ? `${st}: ${names.length} hosts` : `${names.join(' ')}=${st}`)).join('; ');
  log(
    `up ${n} + bastion: ${summary}; prepare ${((tPrepared - t0) / 1000).toFixed(1)} s, boot ${((Date.now() - tPrepared) / 1000).toFixed(1)} s (${BOOT_PARALLEL} at once)`,
  );
  return info;
}

/** Stop everything the fleet started; leaves no process, mount, cgroup, veth, netns or address behind. */
export async function down(): Promise<void> {
  await cleanup({ graceful: true });
}

export async function info(): Promise<FleetInfo> {
  return requireState().info;
}

/**
 * The fleet's three image registries (HTTPS mirror, mTLS + basic-auth private registry, plain
 * HTTP), started on first use so `up` stays fast for tests that need none; `down` stops them.
 */
export async function registries(): Promise<FleetRegistries> {
  const s = requireState();
  return startRegistries(
    s.info.hosts.map((h) => h.gateway),
    s.prepared.ociImagePath,
  );
}

/** Per-host state for status output and the benchmark. */
export async function hostStatus(): Promise<{ name: string; address: string; running: boolean; systemState: string | null; memoryBytes: number | null }[]> {
  const s = requireState();
  return allHosts(s.info).map((h) => {
    const rt = s.runtime[h.name];
    const running = !!rt && !processGone(rt.nspawnPid);
    return { name: h.name, address: h.address, running, systemState: rt?.systemState ?? null, memoryBytes: rt && running ? hostMemoryBytes(rt) : null };
  });
}

/** Working set of the host's memory cgroup: usage minus reclaimable file cache (what `docker stats` shows). */
function hostMemoryBytes(rt: HostRuntime): number | null {
  for (const d of rt.cgroups) {
    for (const [usageFile, statFile, inactiveKey] of [
      ['memory.usage_in_bytes', 'memory.stat', 'total_inactive_file'],
      ['memory.current', 'memory.stat', 'inactive_file'],
    ] as const) {
      const p = join(d, usageFile);
      if (!existsSync(p)) continue;
      const usage = Number(readFileSync(p, 'utf8').trim());
      if (!Number.isFinite(usage) || usage <= 0) continue;
      const stat = readFileSync(join(d, statFile), 'utf8');
      const inactive = Number(new RegExp(`^${inactiveKey} (\\d+)$`, 'm').exec(stat)?.[1] ?? 0);
      return Math.max(0, usage - inactive);
    }
  }
  return null;
}

function findHost(s: FleetState, name: string): FleetHost {
  hostIndex(name);
  const h = allHosts(s.info).find((x) => x.name === name);
  if (!h)
    throw new Error(
      `no host ${name} in the fleet (${allHosts(s.info)
        .map((x) => x.name)
        .join(', ')})`,
    );
  return h;
}

export async function stopHost(name: string, opts: { abrupt?: boolean } = {}): Promise<void> {
  const s = requireState();
  const h = findHost(s, name);
  const rt = s.runtime[name];
  if (!rt) return;
  await haltHost(h, rt, { abrupt: opts.abrupt });
  s.runtime[name] = null;
  writeState(s);
}

export async function startHost(name: string): Promise<void> {
  const s = requireState();
  const h = findHost(s, name);
  const rt = s.runtime[name];
  if (rt && !processGone(rt.nspawnPid)) return;
  if (rt) await haltHost(h, rt, { abrupt: true }); // died on its own: clear its mounts and cgroups first
  s.runtime[name] = await startOne(h, s);
  writeState(s);
}

/** Back to a pristine, freshly booted base host: empty overlay upper layer and /var/lib/containerd. */
export async function resetHost(name: string): Promise<void> {
  const s = requireState();
  const h = findHost(s, name);
  const rt = s.runtime[name];
  if (rt) {
    await haltHost(h, rt, { abrupt: true });
    s.runtime[name] = null;
    writeState(s);
  }
  await wipeHost(name);
  s.runtime[name] = await startOne(h, s);
  writeState(s);
}

/** A static HTTP server for tests (e.g. a deliberately corrupted mirror copy), on 127.0.0.1 plus `addresses`. */
export async function serveDir(dir: string, opts: { addresses?: string[] } = {}): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const { port, servers } = await listenOn([{ prefix: '/', dir }], opts.addresses ?? []);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      await Promise.all(
        servers.map(
          (srv) =>
            new Promise<void>((r) => {
              srv.closeAllConnections();
              srv.close(() => r());
            }),
        ),
      );
    },
  };
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/**
 * Processes this fleet instance started, found by what they run: its HTTP server (by its port
 * file in the state dir), nspawn on its host dirs, and its registries (by their config dir).
 */
function fleetProcesses(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const c = cmdline(Number(e));
    if (
      (c.includes(SERVE_SCRIPT) && c.includes(`--port-file ${SERVER_PORT_PATH} `)) ||
      (c.includes('systemd-nspawn') && c.includes(`${HOSTS_DIR}/`)) ||
      isFleetRegistryProcess(c)
    )
      out.push(Number(e));
  }
  return out;
}

function fleetMounts(): string[] {
  const mounts: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && (mp.startsWith(`${STATE_DIR}/`) || mp === STATE_DIR)) mounts.push(mp.replace(/\\040/g, ' '));
  }
  return mounts.sort((a, b) => b.length - a.length);
}

async function cleanup(opts: { graceful: boolean }): Promise<void> {
  const s = readState();
  if (s && opts.graceful) {
    await Promise.all(
      Object.entries(s.runtime).map(async ([name, rt]) => {
        const h = allHosts(s.info).find((x) => x.name === name);
        if (rt && h && !processGone(rt.nspawnPid)) await haltHost(h, rt, { graceMs: 10_000 }).catch((e: unknown) => log(`stopping ${name}: ${String(e)}`));
      }),
    );
  }
  for (const pid of fleetProcesses()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await waitFor('fleet processes to exit', 10_000, async () => (fleetProcesses().length === 0 ? true : undefined), 50);
  await removeCgroups(findFleetCgroups());
  for (const m of fleetMounts()) {
    if ((await $`umount ${m}`.nothrow()).exitCode !== 0) await $`umount -l ${m}`.nothrow();
  }
  // Loop devices backing a host's containerd image (only used when the state dir is on overlayfs).
  for (const line of (await $`losetup -l -n -O NAME,BACK-FILE`.nothrow()).stdout.split('\n')) {
    const [dev, file] = line.trim().split(/\s+/);
    if (dev && file?.startsWith(`${STATE_DIR}/`)) await $`losetup -d ${dev}`.nothrow();
  }
  await removeAllFleetNetworks();
  for (const n of Object.keys(s?.runtime ?? {})) await deleteHostNetwork(hostIndex(n)).catch(() => undefined);
  await restoreForwarding();
  rmSync(HOSTS_DIR, { recursive: true, force: true });
  rmSync(HOSTKEYS_DIR, { recursive: true, force: true });
  rmSync(REGISTRIES_DIR, { recursive: true, force: true });
  for (const f of [STATE_FILE, SERVER_PID_PATH, SERVER_PORT_PATH]) rmSync(f, { force: true });
  await sleep(0);
}

/** What a run left behind, for tests asserting that down leaves nothing. */
export async function leftovers(): Promise<{
  processes: number[];
  mounts: string[];
  cgroups: string[];
  netns: string[];
  links: string[];
  addresses: string[];
  rules: string[];
}> {
  const { netns, links } = await listFleetNetworks();
  const addresses = await listFleetAddresses();
  return { processes: fleetProcesses(), mounts: fleetMounts(), cgroups: findFleetCgroups(), netns, links, addresses, rules: await listForwardingRules() };
}
