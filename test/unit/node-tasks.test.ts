import { test } from 'node:test';
import assert from 'node:assert/strict';
import kernelModule, { renderModulesLoad } from '../../src/tasks/kernel-module.js';
import sysctl from '../../src/tasks/sysctl.js';
import swap, { commentSwapLines, parseSwapUnits, planUnits } from '../../src/tasks/swap.js';
import lineInFile, { editLines } from '../../src/tasks/line-in-file.js';
import packageTask from '../../src/tasks/package.js';
import { moduleProbe, parseModuleProbe, moduleForParameter } from '../../src/tasks/lib/kernel.js';
import { PlanState, type AnyTask, type TaskPlan } from '../../src/tasks/types.js';
import type { ProbeResult } from '../../src/facts/probe.js';
import { parseFacts } from '../../src/facts/facts.js';
import { FanOut } from '../../src/runner/fan-out.js';
import { sha256 } from '../../src/util/hash.js';
import { Logger } from '../../src/util/log.js';
import { parseWith } from '../../src/util/schema.js';
import { FakeHost } from '../support/fake-host.js';
import { judge, preflightScript } from '../../src/modules/kubernetes-node/tasks/preflight.js';
import { nodeSettings } from '../../src/modules/kubernetes-node/settings.js';
import { uniqueAcrossFleet } from '../../src/modules/kubernetes-node/fleet.js';

const absent: ProbeResult = { out: '', code: 0, file: { exists: false } };
const fileWith = (text: string): ProbeResult => ({
  out: '',
  code: 0,
  file: { exists: true, sha256: sha256(text), mode: 0o644, owner: 'root', group: 'root', content: Buffer.from(text) },
});

/** Plans one task from canned probe results, on a shared plan state when given (the tasks before it in a playbook). */
function plan(task: AnyTask, params: Record<string, unknown>, probes: Record<string, ProbeResult>, state = new PlanState()): TaskPlan | Promise<TaskPlan> {
  const { value, issues } = parseWith(task.params, params);
  assert.deepEqual(issues, []);
  const controller = { playbookDir: '.', inventoryDir: '.', log: new Logger(), progress: () => undefined, deliver: new FanOut(new Logger()).deliver };
  return task.plan(value as Record<string, unknown>, {
    host: { name: 'h', address: 'h', become: false, becomeUser: 'root', groups: [], vars: {}, varLayers: [] },
    vars: {},
    settings: undefined,
    options: { check: true, diff: false, offline: true },
    controller,
    facts: parseFacts('init=systemd\npm=apt\nkernel=6.1.0'),
    prepared: undefined,
    state,
    live: undefined,
    probe: (id) => probes[id] ?? { out: '', code: 255 },
  });
}
const summaries = async (p: TaskPlan | Promise<TaskPlan>) => (await p).actions.map((a) => a.summary);
const mods = (lines: string): ProbeResult => ({ out: lines, code: 0 });

test('kernel_module: built-in and loaded modules are not loaded again; an available one is; the file persists all', async () => {
  const p = await plan(
    kernelModule as AnyTask,
    { name: 'k8s', modules: ['overlay', 'br_netfilter', 'ip_vs'] },
    {
      conf: absent,
      mods: mods('mod overlay builtin\nmod br_netfilter loaded\nmod ip_vs available\n'),
    },
  );
  assert.deepEqual(
    p.actions.map((a) => a.summary),
    ['create /etc/modules-load.d/k8s.conf', 'load ip_vs (modprobe)'],
  );
  assert.deepEqual(p.notes, ['overlay: built into the kernel, nothing to load']);
  const conn = new FakeHost();
  await p.actions[1].run(conn, { options: { check: false, diff: false, offline: true }, log: new Logger(), state: new PlanState(), note: () => undefined });
  assert.deepEqual(conn.ran, ['modprobe -- ip_vs']);
  const again = await plan(
    kernelModule as AnyTask,
    { name: 'k8s', modules: ['overlay', 'br_netfilter', 'ip_vs'] },
    {
      conf: fileWith(renderModulesLoad('k8s', ['overlay', 'br_netfilter', 'ip_vs'])),
      mods: mods('mod overlay builtin\nmod br_netfilter loaded\nmod ip_vs loaded\n'),
    },
  );
  assert.deepEqual(again.actions, []);
});

test('kernel_module state = "absent": an unused loaded module is unloaded, built-ins and modules in use are left with a note, only hoist\'s file is removed', async () => {
  const params = { name: 'k8s', modules: ['overlay', 'br_netfilter', 'ip_vs', 'nf_conntrack'], state: 'absent' };
  const mods4 = mods('mod overlay builtin\nmod br_netfilter loaded\nmod ip_vs loaded\nmod nf_conntrack available\n');
  const use = mods('use overlay -\nuse br_netfilter 0\nuse ip_vs 2\nuse nf_conntrack -\n');
  const state = new PlanState();
  state.kernelModules.add('br_netfilter');
  const p = await plan(kernelModule as AnyTask, params, { conf: fileWith(renderModulesLoad('k8s', params.modules)), mods: mods4, use }, state);
  assert.deepEqual(
    p.actions.map((a) => a.summary),
    ['remove /etc/modules-load.d/k8s.conf', 'unload br_netfilter (rmmod)'],
  );
  assert.deepEqual(p.notes, ["overlay: built into the kernel, which can't unload it (left as it is)", 'ip_vs: in use (used 2 time(s)), left loaded']);
  assert.equal(state.kernelModules.has('br_netfilter'), false);
  const conn = new FakeHost();
  for (const a of p.actions)
    await a.run(conn, { options: { check: false, diff: false, offline: true }, log: new Logger(), state: new PlanState(), note: () => undefined });
  assert.deepEqual(conn.ran, ['rm -f -- /etc/modules-load.d/k8s.conf', 'rmmod -- br_netfilter']);
  // Someone else's file of that name stays.
  const theirs = await plan(kernelModule as AnyTask, params, { conf: fileWith('br_netfilter\n'), mods: mods4, use });
  assert.deepEqual(
    theirs.actions.map((a) => a.summary),
    ['unload br_netfilter (rmmod)'],
  );
  assert.match(theirs.notes!.join('\n'), /\/etc\/modules-load\.d\/k8s\.conf was not written by hoist: left in place/);
  // Converged: nothing loaded, no file.
  const again = await plan(kernelModule as AnyTask, params, {
    conf: absent,
    mods: mods('mod overlay builtin\nmod br_netfilter available\nmod ip_vs available\nmod nf_conntrack available\n'),
    use: mods(''),
  });
  assert.deepEqual(again.actions, []);
});

test('kernel_module: a module the kernel lacks is refused at plan time; modprobe missing needs kmod first', async () => {
  await assert.rejects(
    async () => plan(kernelModule as AnyTask, { name: 'k', modules: ['nosuch'] }, { conf: absent, mods: mods('mod nosuch missing') }),
    /kernel \(6\.1\.0\) has no module nosuch/,
  );
  await assert.rejects(
    async () => plan(kernelModule as AnyTask, { name: 'k', modules: ['ip_vs'] }, { conf: absent, mods: mods('mod ip_vs no-modprobe') }),
    /no modprobe: install kmod/,
  );
  const state = new PlanState();
  await plan(packageTask as AnyTask, { name: ['kmod'] }, { pkgs: { out: '', code: 0, installed: new Set() } }, state);
  assert.deepEqual(
    await summaries(plan(kernelModule as AnyTask, { name: 'k', modules: ['ip_vs'] }, { conf: absent, mods: mods('mod ip_vs no-modprobe') }, state)),
    ['create /etc/modules-load.d/k.conf', 'load ip_vs (modprobe)'],
  );
  assert.deepEqual(
    parseWith(kernelModule.params, { name: 'k', modules: ['bad name'] }).issues.map((i) => i.path.join('.')),
    ['modules.0'],
  );
  await assert.rejects(async () => parseModuleProbe({ out: 'mod a builtin', code: 0 }, ['a', 'b']), /state of kernel module b/);
});

test("sysctl: a parameter the plan's kernel_module brings plans on a fresh host; without that task it is refused, naming the module", async () => {
  const settings = { 'net.bridge.bridge-nf-call-iptables': 1, 'net.ipv4.ip_forward': 1 };
  const sysProbes = { conf: absent, live: mods('live net.ipv4.ip_forward=0') };
  await assert.rejects(
    async () => plan(sysctl as AnyTask, { name: 'k8s', settings }, sysProbes),
    /no parameter net\.bridge\.bridge-nf-call-iptables .*comes with the br_netfilter module: put a kernel_module task/,
  );
  const state = new PlanState();
  await plan(kernelModule as AnyTask, { name: 'k8s', modules: ['br_netfilter'] }, { conf: absent, mods: mods('mod br_netfilter available') }, state);
  assert.deepEqual(await summaries(plan(sysctl as AnyTask, { name: 'k8s', settings }, sysProbes, state)), [
    'create /etc/sysctl.d/k8s.conf',
    'set net.bridge.bridge-nf-call-iptables (appears once br_netfilter is loaded) → 1, net.ipv4.ip_forward 0 → 1',
  ]);
  // A later sysctl task sees the value the earlier one sets.
  assert.equal(state.sysctls.get('net.ipv4.ip_forward'), '1');
  assert.deepEqual(await summaries(plan(sysctl as AnyTask, { name: 'other', settings: { 'net.ipv4.ip_forward': 1 } }, sysProbes, state)), [
    'create /etc/sysctl.d/other.conf',
  ]);
  assert.equal(moduleForParameter('net.ipv4.ip_forward'), undefined);
});

test('swap: active swap goes off, fstab swap lines are commented, vendor units masked and admin units disabled', async () => {
  const fstab = '# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n#/old none swap sw 0 0\n  /dev/sdb2   none  swap  sw  0 0\n';
  const p = await plan(
    swap as AnyTask,
    {},
    {
      swaps: mods('swap /swapfile file\nswap /dev/sdb2 partition'),
      fstab: fileWith(fstab),
      units: mods('dev-zram0.swap generated vendor\nswapfile.swap enabled admin\nold.swap masked vendor\nidle.swap disabled admin\n'),
    },
  );
  assert.deepEqual(
    p.actions.map((a) => a.summary),
    [
      'swapoff /swapfile, /dev/sdb2',
      'update /etc/fstab: comment out swap /swapfile, /dev/sdb2',
      'mask dev-zram0.swap',
      'disable and stop swapfile.swap (unit files in /etc/systemd/system are left in place)',
    ],
  );
  const { text } = commentSwapLines(fstab);
  assert.equal(
    text,
    '# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n# swap kept off by hoist: /swapfile none swap sw 0 0\n#/old none swap sw 0 0\n# swap kept off by hoist:   /dev/sdb2   none  swap  sw  0 0\n',
  );
  const done = await plan(
    swap as AnyTask,
    {},
    { swaps: mods(''), fstab: fileWith(text), units: mods('dev-zram0.swap masked vendor\nswapfile.swap disabled admin') },
  );
  assert.deepEqual(done.actions, []);
  assert.deepEqual(planUnits(parseSwapUnits(mods('a.swap static vendor'))), { mask: ['a.swap'], disable: [] });
  const conn = new FakeHost();
  await p.actions[0].run(conn, { options: { check: false, diff: false, offline: true }, log: new Logger(), state: new PlanState(), note: () => undefined });
  assert.deepEqual(conn.ran, ['swapoff -- /swapfile /dev/sdb2']);
});

test("line_in_file: replace the last match, append when none, remove; keeps the rest; plans on an earlier task's content", async () => {
  assert.equal(editLines('a=1\nb=2\na=3\n', { line: 'a=9', regexp: '^a=', state: 'present' }), 'a=1\nb=2\na=9\n');
  assert.equal(editLines('b=2', { line: 'a=9', regexp: '^a=', state: 'present' }), 'b=2\na=9\n');
  assert.equal(editLines('a=9\n', { line: 'a=9', state: 'present' }), 'a=9\n');
  assert.equal(editLines('a=1\nb=2\na=3\n', { line: '', regexp: '^a=', state: 'absent' }), 'b=2\n');
  assert.equal(editLines('', { line: 'x', state: 'present' }), 'x\n');
  const p = await plan(lineInFile as AnyTask, { path: '/etc/x.conf', line: 'a=9', regexp: '^a=' }, { file: fileWith('a=1\n') });
  assert.deepEqual(
    p.actions.map((a) => a.summary),
    ['update /etc/x.conf'],
  );
  assert.deepEqual((await plan(lineInFile as AnyTask, { path: '/etc/x.conf', line: 'a=9', regexp: '^a=' }, { file: fileWith('a=9\n') })).actions, []);
  assert.deepEqual((await plan(lineInFile as AnyTask, { path: '/etc/x.conf', line: 'a=9', state: 'absent' }, { file: absent })).actions, []);
  await assert.rejects(async () => plan(lineInFile as AnyTask, { path: '/etc/x.conf', line: 'a', create: false }, { file: absent }), /does not exist/);
  // Two edits of one file in one plan: the second starts from what the first will write.
  const state = new PlanState();
  await plan(lineInFile as AnyTask, { path: '/etc/x.conf', line: 'a=9', regexp: '^a=' }, { file: fileWith('a=1\n') }, state);
  const second = await plan(lineInFile as AnyTask, { path: '/etc/x.conf', line: 'b=2' }, { file: fileWith('a=1\n') }, state);
  assert.equal(state.fileContents.get('/etc/x.conf')?.toString(), 'a=9\nb=2\n');
  assert.equal(second.actions.length, 1);
  assert.deepEqual(
    parseWith(lineInFile.params, { path: '/x', line: 'a', regexp: '(' }).issues.map((i) => i.message),
    ['not a valid regular expression: Invalid regular expression: /(/: Unterminated group'],
  );
});

test('the module probe reads with builtins where it can and names each module once', () => {
  const script = moduleProbe(['overlay', 'br-netfilter']);
  assert.match(script, /\/sys\/module\/br_netfilter\/initstate/);
  assert.match(script, /\/proc\/sys\/net\/bridge\/bridge-nf-call-iptables/);
  assert.match(script, /<\s*\/proc\/filesystems/);
  assert.equal((script.match(/printf 'mod/g) ?? []).length, 2);
});

test('kubernetes-node preflight: each failed check names what is wrong and the fix; settings refuse bridge parameters without br_netfilter', () => {
  const st = {
    modules: ['br_netfilter'],
    sysctls: { 'net.ipv4.ip_forward': 1, 'net.bridge.bridge-nf-call-iptables': 1 },
    ports: [10250],
    commands: ['ip', 'nsenter'],
    criSocket: '/run/containerd/containerd.sock',
    cgroupDriver: 'systemd' as const,
  };
  const good =
    'sysctl net.ipv4.ip_forward=1\nsysctl net.bridge.bridge-nf-call-iptables=1\nlisten=22\ncmd ip=yes\ncmd nsenter=yes\ncgroup2=cpuset cpu io memory pids\nhostname=n1 resolves\n';
  assert.deepEqual(judge(st, good), {
    lines: ['node ready: swap off, 2 kernel parameters, port 10250 free, 2 commands, cgroup v2 controllers, not joined before, hostname n1 resolves'],
    problems: [],
  });
  const bad =
    'swap=/swapfile\nsysctl net.ipv4.ip_forward=0\nsysctl net.bridge.bridge-nf-call-iptables=absent\nlisten=10250\ncmd ip=yes\ncmd nsenter=no\ncgroup2=cpuset cpu io memory pids\nhostname=n1 unresolved\n';
  assert.deepEqual(judge(st, bad).problems, [
    'swap is on (/swapfile): the kubelet fails with swap on; run the swap task (swapoff, fstab)',
    'net.ipv4.ip_forward is 0, a node needs 1: set it with the sysctl task',
    'net.bridge.bridge-nf-call-iptables does not exist on this kernel: load the module that brings it (kernel_module)',
    'port 10250 is already in use: the kubelet listens there (stop what holds it)',
    "command nsenter not found: kubeadm's preflight requires it (install its package)",
    'hostname "n1" does not resolve: add it to /etc/hosts or DNS',
  ]);
  assert.match(preflightScript(st), /while read -r _ l _ st _; do \[ "\$st" = 0A \]/);
  const issues: string[] = [];
  nodeSettings({ node_sysctls: { 'net.bridge.bridge-nf-call-iptables': 1 }, node_kernel_modules: ['overlay'] }, (i) =>
    issues.push(`${i.path.join('.')}: ${i.message}`),
  );
  assert.deepEqual(issues, ['node_kernel_modules: net.bridge.* parameters in node_sysctls need br_netfilter among node_kernel_modules']);
});

test('hoist verify across the fleet: a hostname, product_uuid or MAC two hosts share fails both, naming the other', () => {
  const f = (hostname: string, productUuid?: string, mac = '02:00:00:00:00:01') => ({
    ...parseFacts(`hostname=${hostname}`),
    productUuid,
    macs: { eth0: mac },
  });
  assert.deepEqual(
    uniqueAcrossFleet([
      { name: 'a', facts: f('a', 'u1', '02:00:00:00:00:01') },
      { name: 'b', facts: f('b', 'u2', '02:00:00:00:00:02') },
    ]),
    [],
  );
  assert.deepEqual(
    uniqueAcrossFleet([
      { name: 'a', facts: f('node', 'u1', '02:00:00:00:00:01') },
      { name: 'b', facts: f('node', 'u1', '02:00:00:00:00:02') },
      { name: 'c', facts: f('c', undefined, '02:00:00:00:00:02') },
    ]),
    [
      { host: 'a', problem: "hostname node is also b's: give each node its own (hostnamectl set-hostname)" },
      { host: 'b', problem: "hostname node is also a's: give each node its own (hostnamectl set-hostname)" },
      { host: 'a', problem: "product_uuid u1 is also b's: a cloned VM keeps its source's; give each VM its own UUID" },
      { host: 'b', problem: "product_uuid u1 is also a's: a cloned VM keeps its source's; give each VM its own UUID" },
      { host: 'b', problem: "MAC address 02:00:00:00:00:02 is also c's: a cloned VM keeps its source's; give each interface its own address" },
      { host: 'c', problem: "MAC address 02:00:00:00:00:02 is also b's: a cloned VM keeps its source's; give each interface its own address" },
    ],
  );
  const facts = parseFacts('mac_eth0=02:AA:00:00:00:01\nproduct_uuid=ABC-1\nhostname=x');
  assert.deepEqual([facts.macs, facts.productUuid], [{ eth0: '02:aa:00:00:00:01' }, 'abc-1']);
});
