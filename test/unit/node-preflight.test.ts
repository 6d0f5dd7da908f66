import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { judge, missingControllers } from '../../src/modules/kubernetes-node/tasks/preflight.js';
import { driverFromCrictl, driverFromDump, judgeCri } from '../../src/modules/kubernetes-node/tasks/cri-preflight.js';
import { clockSkew, uniqueAcrossFleet } from '../../src/modules/kubernetes-node/fleet.js';
import { nodeSettings, type NodeSettings } from '../../src/modules/kubernetes-node/settings.js';
import { clockReading, parseClock } from '../../src/facts/clock.js';
import { parseFacts, type Facts } from '../../src/facts/facts.js';
import { gather } from '../../src/facts/probe.js';
import type { ExecResult } from '../../src/ssh/connection.js';

const st: NodeSettings = { modules: [], sysctls: {}, ports: [10250], commands: [], criSocket: '/run/containerd/containerd.sock', cgroupDriver: 'systemd' };
const rest = 'hostname=n1 resolves\n';

// /proc/cgroups of a cgroup v1 host (the fleet's), pids disabled as cgroup_disable=pids leaves it.
const PROC_CGROUPS = [
  'cpuset\t3\t17\t1',
  'cpu\t1\t17\t1',
  'cpuacct\t2\t17\t1',
  'blkio\t7\t17\t1',
  'memory\t4\t218\t1',
  'devices\t5\t17\t1',
  'freezer\t6\t17\t1',
  'net_cls\t0\t244\t1',
  'hugetlb\t0\t244\t1',
  'pids\t8\t17\t0',
];
const v1 = (lines: string[]) =>
  lines
    .map((l) => {
      const [n, , , e] = l.split('\t');
      return `cgroup1 ${n}=${e}`;
    })
    .join('\n') + '\n';

test('cgroup controllers, v1: each required one enabled in /proc/cgroups (kubeadm SystemVerification)', () => {
  assert.deepEqual(missingControllers(v1(PROC_CGROUPS)), { version: 1, missing: ['pids'] });
  const all = PROC_CGROUPS.map((l) => l.replace(/\t0$/, '\t1'));
  assert.deepEqual(missingControllers(v1(all)), { version: 1, missing: [] });
  assert.deepEqual(missingControllers(v1(all.filter((l) => !l.startsWith('memory')))), { version: 1, missing: ['memory'] });
  assert.deepEqual(judge(st, v1(PROC_CGROUPS) + rest).problems, [
    'cgroup v1 controller pids not enabled: the kubelet needs it; remove cgroup_disable=pids from the kernel command line, or use a kernel built with it',
  ]);
  assert.deepEqual(judge(st, v1(all) + rest), {
    lines: ['node ready: swap off, 0 kernel parameters, port 10250 free, 0 commands, cgroup v1 controllers, not joined before, hostname n1 resolves'],
    problems: [],
  });
});

test("cgroup controllers, v2: cpu, cpuset, memory, pids in the root's cgroup.controllers (devices and freezer are implicit)", () => {
  assert.deepEqual(missingControllers('cgroup2=cpuset cpu io memory hugetlb pids rdma misc\n'), { version: 2, missing: [] });
  // A container whose parent delegated only some controllers.
  assert.deepEqual(missingControllers('cgroup2=memory pids\n'), { version: 2, missing: ['cpu', 'cpuset'] });
  assert.deepEqual(missingControllers('cgroup2=\n'), { version: 2, missing: ['cpu', 'cpuset', 'memory', 'pids'] });
  assert.deepEqual(judge(st, 'cgroup2=cpu memory pids\n' + rest).problems, [
    "cgroup v2 controller cpuset not available: the kubelet needs it; enable it in the kernel, or delegate it to this node's cgroup (cgroup.subtree_control of its parent)",
  ]);
  assert.deepEqual(judge(st, rest).problems, ['the cgroup controllers could not be read (/proc/cgroups, /sys/fs/cgroup/cgroup.controllers)']);
});

test('a host that joined a cluster before is named with its files and kubeadm reset as the fix', () => {
  const out = 'cgroup2=cpuset cpu memory pids\njoined=/etc/kubernetes/kubelet.conf\njoined=/etc/kubernetes/pki/ca.crt\n' + rest;
  assert.deepEqual(judge(st, out).problems, [
    '/etc/kubernetes/kubelet.conf, /etc/kubernetes/pki/ca.crt already exist: this host has joined a cluster before; run kubeadm reset on it first',
  ]);
});

// `containerd config dump` of containerd 1.7 (io.containerd.grpc.v1.cri) and 2.x (io.containerd.cri.v1.runtime), trimmed.
const dump17 = (systemd: boolean | undefined, runtime = 'runc') => `version = 2
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "${runtime}"
      snapshotter = "overlayfs"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
${systemd === undefined ? '' : `            SystemdCgroup = ${systemd}\n`}        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
            SystemdCgroup = true
`;
const dump2 = (systemd: boolean) => `version = 3
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'
          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            BinaryName = ''
            SystemdCgroup = ${systemd}
`;
const crictl = (systemd: boolean, name = 'runc') =>
  JSON.stringify(
    {
      status: { conditions: [{ type: 'RuntimeReady', status: true }] },
      config: {
        containerd: {
          snapshotter: 'overlayfs',
          defaultRuntimeName: name,
          runtimes: {
            runc: { runtimeType: 'io.containerd.runc.v2', options: { BinaryName: '', SystemdCgroup: systemd } },
            kata: { runtimeType: 'io.containerd.kata.v2', options: {} },
          },
        },
      },
    },
    null,
    2,
  );

test("the runtime's cgroup driver: SystemdCgroup of the default runtime, from config dump (1.x and 2.x) or crictl info", () => {
  assert.equal(driverFromDump(dump17(true)), 'systemd');
  assert.equal(driverFromDump(dump17(false)), 'cgroupfs');
  // containerd's own default: no SystemdCgroup key means cgroupfs.
  assert.equal(driverFromDump(dump17(undefined)), 'cgroupfs');
  // The default runtime is what the kubelet's pods get: crun here, which has it on.
  assert.equal(driverFromDump(dump17(false, 'crun')), 'systemd');
  assert.equal(driverFromDump(dump2(true)), 'systemd');
  assert.equal(driverFromDump(dump2(false)), 'cgroupfs');
  assert.equal(driverFromDump('version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n'), undefined);
  assert.equal(driverFromDump('not toml ['), undefined);
  assert.equal(driverFromCrictl(crictl(true)), 'systemd');
  assert.equal(driverFromCrictl(crictl(false)), 'cgroupfs');
  assert.equal(driverFromCrictl(crictl(true, 'kata')), 'cgroupfs');
  assert.equal(driverFromCrictl('{"status":{}}'), undefined);
  assert.equal(driverFromCrictl('FATA[0000] validate service connection'), undefined);
});

test('the CRI preflight names the socket, the driver mismatch and the fix', () => {
  const up = 'socket=yes\nlistening=yes\n';
  assert.deepEqual(judgeCri(st, `${up}@@dump\n${dump17(true)}@@rc=0\n`), {
    lines: ["container runtime ready: /run/containerd/containerd.sock answers, cgroup driver systemd as the kubelet's"],
    problems: [],
  });
  assert.deepEqual(judgeCri(st, `${up}@@dump\n${dump17(false)}@@rc=0\n`).problems, [
    'the runtime uses the cgroupfs cgroup driver (SystemdCgroup = false, containerd config dump) but the kubelet will use systemd (kubelet_cgroup_driver): set systemd_cgroup = true for the containerd module',
  ]);
  assert.deepEqual(judgeCri({ ...st, cgroupDriver: 'cgroupfs' }, `${up}@@crictl\n${crictl(true)}\n@@rc=0\n`).problems, [
    'the runtime uses the systemd cgroup driver (SystemdCgroup = true, crictl info) but the kubelet will use cgroupfs (kubelet_cgroup_driver): set systemd_cgroup = false for the containerd module, or kubelet_cgroup_driver = "systemd" with cgroupDriver: systemd in the kubelet\'s configuration',
  ]);
  assert.deepEqual(judgeCri(st, 'socket=no\nlistening=no\n').problems, [
    "the container runtime's socket /run/containerd/containerd.sock does not exist: start the runtime (systemctl start containerd), or install it (playbooks/node.toml); node_cri_socket names another runtime's",
  ]);
  assert.match(judgeCri(st, 'socket=yes\nlistening=no\n').problems[0], /containerd\.sock exists but nothing listens on it: start the runtime/);
  assert.deepEqual(judgeCri(st, `${up}@@crictl\nE1207 connect: connection refused\n@@rc=1\n`).problems, [
    'the container runtime does not answer on /run/containerd/containerd.sock (crictl info: E1207 connect: connection refused): check journalctl -u containerd',
  ]);
  assert.deepEqual(judgeCri(st, up).problems, ["neither crictl nor containerd is on this host: the runtime's cgroup driver could not be read"]);
  const issues: string[] = [];
  assert.equal(nodeSettings({}, (i) => issues.push(i.message))?.cgroupDriver, 'systemd');
  assert.equal(
    nodeSettings({ kubelet_cgroup_driver: 'cgroupfs', node_cri_socket: '/run/crio/crio.sock' }, (i) => issues.push(i.message))?.criSocket,
    '/run/crio/crio.sock',
  );
  assert.deepEqual(issues, []);
});

test('a clock reading: the offset lies between (last read − answer) and (first read − send), whatever the probes cost between the reads', () => {
  assert.equal(parseClock('1796663575.161356\n'), 1796663575161.356);
  assert.equal(parseClock('1796663575,5'), 1796663575500);
  assert.equal(parseClock(''), undefined);
  // Sent at 1000, answered at 1100 (controller ms); the host read 1520 first and 1590 last: the
  // 70 ms of probes between the reads narrow the bound to the 30 ms the transport took.
  assert.deepEqual(clockReading(1000, 1100, 1520, 1590), { offsetMs: 505, errorMs: 15 });
  // The same clock on both ends: the interval holds 0.
  const r = clockReading(1000, 1100, 1040, 1060)!;
  assert.ok(Math.abs(r.offsetMs) <= r.errorMs, JSON.stringify(r));
  // A clock that stepped back mid-script gives no reading rather than a wrong one.
  assert.equal(clockReading(1000, 1100, 1060, 1040), undefined);
});

const withClock = (name: string, offsetMs: number, errorMs = 20): { name: string; facts: Facts } => ({
  name,
  facts: { ...parseFacts(`hostname=${name}`), clock: { offsetMs, errorMs } },
});

test("clock skew: a host beyond 1 s of the median of the controller's and the hosts' clocks is named with its offsets", () => {
  assert.deepEqual(clockSkew([withClock('a', 30), withClock('b', -200), withClock('c', 400)]), []);
  // One host 5 s ahead: the median is the others', it alone is named.
  assert.deepEqual(clockSkew([withClock('a', 30), withClock('b', 5030), withClock('c', 10)]), [
    {
      host: 'b',
      problem:
        "clock is 5.01 s ahead of the fleet's median (±0.02 s; 5.03 s ahead of the controller's clock), more than 1 s: keep the clocks in step with NTP (timedatectl set-ntp true, or chrony)",
    },
  ]);
  // The controller is the wrong clock: every host agrees, none is named.
  assert.deepEqual(clockSkew([withClock('a', 7000), withClock('b', 7100), withClock('c', 6900)]), []);
  // Two hosts: the controller's clock breaks the tie.
  assert.deepEqual(
    clockSkew([withClock('a', 50), withClock('b', -3000)]).map((p) => p.host),
    ['b'],
  );
  assert.match(
    clockSkew([withClock('a', 50), withClock('b', -3000)])[0].problem,
    /^clock is 3\.00 s behind the fleet's median \(±0\.02 s; 3\.00 s behind the controller's clock\)/,
  );
  // 1.4 s off but measured over a slow round trip (±0.5 s): not provably beyond 1 s, not named.
  assert.deepEqual(clockSkew([withClock('a', 0), withClock('b', 1400, 500), withClock('c', 0)]), []);
  assert.deepEqual(
    clockSkew([withClock('a', 0), withClock('b', 1400, 300), withClock('c', 0)]).map((p) => p.host),
    ['b'],
  );
  // Hosts without a reading are left out; the fleet check runs it beside the uniqueness checks.
  assert.deepEqual(clockSkew([{ name: 'x', facts: parseFacts('hostname=x') }]), []);
  assert.deepEqual(
    uniqueAcrossFleet([withClock('a', 0), withClock('b', 2500)]).map((p) => p.host),
    ['b'],
  );
});

test("the gathering round trip measures a host's clock: the same clock is within the bound; a host 5 s ahead is named by the fleet check", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-clock-'));
  try {
    // A host whose clock runs 5 s ahead: bash without EPOCHREALTIME falls back to date, shimmed.
    writeFileSync(
      path.join(dir, 'date'),
      '#!/bin/bash\nif [ "$1" = +%s.%N ]; then t=$(/bin/date +%s.%N); echo "$((${t%.*} + 5)).${t#*.}"; else exec /bin/date "$@"; fi\n',
    );
    chmodSync(path.join(dir, 'date'), 0o755);
    const bash = (prefix: string, env: NodeJS.ProcessEnv) => ({
      exec: (script: string) =>
        new Promise<ExecResult>((resolve, reject) => {
          const p = spawn('/bin/bash', [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
          let stdout = '';
          p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          p.on('error', reject);
          // A transport that takes 50 ms each way.
          p.on('close', (code) => setTimeout(() => resolve({ stdout, stderr: '', code: code ?? -1 }), 50));
          setTimeout(() => p.stdin.end(prefix + script), 50);
        }),
    });
    const same = await gather(bash('', process.env), new Map([['0:slow', 'sleep 0.3']]));
    const c = same.facts.clock!;
    assert.ok(c, 'a clock reading');
    // Date.now() has ms resolution.
    assert.ok(Math.abs(c.offsetMs) <= c.errorMs + 1, JSON.stringify(c));
    // The 300 ms of probes do not widen the bound: only the transport (about 100 ms) does.
    assert.ok(c.errorMs >= 50 && c.errorMs < 250, JSON.stringify(c));
    const ahead = await gather(bash('unset EPOCHREALTIME\n', { ...process.env, PATH: `${dir}:${process.env.PATH}` }), new Map());
    assert.ok(Math.abs(ahead.facts.clock!.offsetMs - 5000) <= ahead.facts.clock!.errorMs + 1, JSON.stringify(ahead.facts.clock));
    const problems = uniqueAcrossFleet([
      { name: 'h1', facts: same.facts },
      { name: 'h2', facts: { ...ahead.facts, hostname: 'h2', macs: {}, productUuid: undefined } },
      { name: 'h3', facts: { ...same.facts, hostname: 'h3', macs: {}, productUuid: undefined } },
    ]);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0].host, 'h2');
    assert.match(problems[0].problem, /^clock is [45]\.\d\d s ahead of the fleet's median/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
