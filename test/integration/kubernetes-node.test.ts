import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { hoistJson, onHost, changedCount, ROOT, type JsonReport } from '../support/hoist.js';

/*
 * The kubernetes-node playbook on fresh fleet hosts, as the operator runs it: deploy through the
 * bastion with sudo. The fleet's kernel has overlay and br_netfilter built in (no /lib/modules in
 * the hosts, no /sys/module entry for br_netfilter), which the plan must recognise rather than
 * call modprobe. nspawn refuses swapon (its syscall filter has no @swap), so a host's swap is what
 * it keeps across reboots: an fstab line and a systemd .swap unit.
 */

let info: fleet.FleetInfo;
let dir: string;
const PB = path.join(ROOT, 'playbooks', 'kubernetes-node.toml');
const inv = () => info.inventoryPath;

before(async () => {
  info = await fleet.info();
  await Promise.all(['h1', 'h2'].map((h) => fleet.resetHost(h)));
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-k8s-node-'));
  // h1: what a node that has never been prepared looks like: forwarding and bridge filtering off,
  // swap declared in fstab and as a packaged unit (a zram-like one), an admin's own swap unit enabled.
  const h1 = await onHost(
    info,
    'h1',
    [
      'printf "0\\n" > /proc/sys/net/ipv4/ip_forward',
      'printf "0\\n" > /proc/sys/net/bridge/bridge-nf-call-ip6tables',
      'dd if=/dev/zero of=/swapfile bs=1M count=4 status=none && chmod 600 /swapfile && mkswap -q /swapfile',
      'swapon /swapfile 2>/dev/null && echo "swapon allowed" || echo "swapon refused"',
      'printf "/swapfile none swap sw 0 0\\n" >> /etc/fstab',
      'printf "[Swap]\\nWhat=/dev/zram9\\n" > /usr/lib/systemd/system/dev-zram9.swap',
      'printf "[Swap]\\nWhat=/swapfile\\n[Install]\\nWantedBy=swap.target\\n" > /etc/systemd/system/swapfile.swap',
      'systemctl daemon-reload && systemctl enable swapfile.swap 2>/dev/null',
    ].join(' && '),
  );
  assert.equal(h1.code, 0, h1.out);
  // h2: a host that already forwards (one that routes), whatever this machine's namespaces started
  // with: its plan only persists the values.
  const h2 = await onHost(
    info,
    'h2',
    ['ip_forward', 'bridge/bridge-nf-call-iptables', 'bridge/bridge-nf-call-ip6tables']
      .map((k) => `printf "1\\n" > /proc/sys/net/${k.includes('/') ? k : `ipv4/${k}`}`)
      .join(' && '),
  );
  assert.equal(h2.code, 0, h2.out);
  // Documented above: nspawn refuses swapon, so /proc/swaps stays empty here.
  assert.match(h1.out, /swapon refused/);
});

after(() => rm(dir, { recursive: true, force: true }));

const changes = (r: JsonReport) => Object.fromEntries(r.hosts.map((h) => [h.name, h.tasks.flatMap((t) => t.changes.map((c) => `${t.title}: ${c}`))]));

test('--check on fresh hosts lists exactly what the apply does; built-in modules are recognised; a rerun changes nothing', async () => {
  const args = ['apply', PB, '-i', inv(), '--limit', 'h1,h2'];
  const check = await hoistJson([...args, '--check']);
  assert.equal(check.code, 0, check.stderr + JSON.stringify(check.report.hosts.map((h) => h.error)));
  const planned = changes(check.report);
  assert.deepEqual(planned.h1, [
    'kernel modules loaded and persisted: create /etc/modules-load.d/kubernetes-node.conf',
    'forwarding and bridge netfilter set: create /etc/sysctl.d/kubernetes-node.conf',
    'forwarding and bridge netfilter set: set net.ipv4.ip_forward 0 → 1, net.bridge.bridge-nf-call-ip6tables 0 → 1',
    'swap off and kept off: update /etc/fstab: comment out swap /swapfile',
    'swap off and kept off: mask dev-zram9.swap',
    'swap off and kept off: disable and stop swapfile.swap (unit files in /etc/systemd/system are left in place)',
  ]);
  assert.deepEqual(planned.h2, [
    'kernel modules loaded and persisted: create /etc/modules-load.d/kubernetes-node.conf',
    'forwarding and bridge netfilter set: create /etc/sysctl.d/kubernetes-node.conf',
  ]);
  const modules = check.report.hosts[0].tasks.find((t) => t.task === 'kernel_module')!;
  assert.deepEqual(modules.notes, ['overlay: built into the kernel, nothing to load', 'br_netfilter: built into the kernel, nothing to load']);
  assert.equal(
    (await onHost(info, 'h1', 'cat /proc/sys/net/ipv4/ip_forward; test -e /etc/modules-load.d/kubernetes-node.conf && echo present || echo absent')).out,
    '0\nabsent\n',
  );

  const apply = await hoistJson(args);
  assert.equal(apply.code, 0, apply.stderr + JSON.stringify(apply.report.hosts.map((h) => h.error)));
  assert.deepEqual(changes(apply.report), planned);
  for (const h of apply.report.hosts)
    assert.match(
      h.tasks.find((t) => t.task === 'kubernetes_node_preflight')!.notes.join('\n'),
      /node ready: swap off, 3 kernel parameters, port 10250 free, 4 commands, cgroup v1 controllers, not joined before, hostname h\d resolves/,
    );

  const h1 = await onHost(
    info,
    'h1',
    [
      'cat /etc/modules-load.d/kubernetes-node.conf /etc/sysctl.d/kubernetes-node.conf',
      'cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-ip6tables',
      'grep swap /etc/fstab',
      'systemctl is-enabled dev-zram9.swap swapfile.swap; true',
      'test -f /etc/fstab.hoist-prev && echo "fstab kept as .hoist-prev"; test -f /etc/systemd/system/swapfile.swap && echo "admin unit kept"',
    ].join('; '),
  );
  assert.equal(
    h1.out,
    [
      '# Managed by hoist (kernel_module task "kubernetes-node").',
      'overlay',
      'br_netfilter',
      '# Managed by hoist (sysctl task "kubernetes-node").',
      'net.ipv4.ip_forward = 1',
      'net.bridge.bridge-nf-call-iptables = 1',
      'net.bridge.bridge-nf-call-ip6tables = 1',
      '1',
      '1',
      '# swap kept off by hoist: /swapfile none swap sw 0 0',
      'masked',
      'disabled',
      'fstab kept as .hoist-prev',
      'admin unit kept',
      '',
    ].join('\n'),
  );

  const again = await hoistJson(args);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(changedCount(again.report), 0, JSON.stringify(changes(again.report)));
  const verify = await hoistJson(['verify', PB, '-i', inv(), '--limit', 'h1,h2']);
  assert.equal(verify.code, 0, JSON.stringify(verify.report.hosts.map((h) => h.error)));
  // Each host's clock, measured in the gathering round trip. nspawn hosts share the controller's
  // kernel clock (no host's clock can be set apart; the skew logic is unit-tested), so the true
  // offset is 0 and must lie within the bound, which is the transport's time alone.
  for (const h of verify.report.hosts) {
    const c = h.facts!.clock!;
    assert.ok(c && Math.abs(c.offsetMs) <= c.errorMs + 1 && c.errorMs < 1000, `${h.name}: ${JSON.stringify(c)}`);
  }

  // Taken back: the file hoist wrote goes; the built-ins can't be unloaded, and say so.
  const back = path.join(dir, 'modules-absent.toml');
  await writeFile(
    back,
    '[[tasks]]\ntask = "kernel_module"\n[tasks.params]\nname = "kubernetes-node"\nmodules = ["overlay", "br_netfilter"]\nstate = "absent"\n',
  );
  const absent = await hoistJson(['apply', back, '-i', inv(), '--limit', 'h2']);
  assert.equal(absent.code, 0, JSON.stringify(absent.report.hosts.map((h) => h.error)));
  assert.deepEqual(absent.report.hosts[0].tasks[0].changes, ['remove /etc/modules-load.d/kubernetes-node.conf']);
  assert.deepEqual(absent.report.hosts[0].tasks[0].notes, [
    "overlay: built into the kernel, which can't unload it (left as it is)",
    "br_netfilter: built into the kernel, which can't unload it (left as it is)",
  ]);
  assert.equal((await onHost(info, 'h2', 'test -e /etc/modules-load.d/kubernetes-node.conf && echo present || echo gone')).out, 'gone\n');
  assert.equal(changedCount((await hoistJson(['apply', back, '-i', inv(), '--limit', 'h2'])).report), 0);
});

test('the preflight names the host, the check and the fix; a kernel without a module or parameter is refused before the host changes', async () => {
  // Something already listens on the kubelet's port, and a kubelet.conf is left from an earlier join.
  await onHost(info, 'h2', 'mkdir -p /etc/kubernetes && touch /etc/kubernetes/kubelet.conf');
  const listen = await onHost(
    info,
    'h2',
    `printf '%s\\n' 'use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => 10250, Listen => 1, ReuseAddr => 1) or die "$!"; sleep 120;' > /root/listen.pl && systemd-run --collect --unit=hoist-port-10250 perl /root/listen.pl && sleep 1 && grep -c ':280A ' /proc/net/tcp`,
  );
  assert.equal(listen.out.trim().split('\n').pop(), '1', listen.out);
  try {
    const verify = await hoistJson(['verify', PB, '-i', inv(), '--limit', 'h2']);
    assert.equal(verify.code, 2);
    const task = verify.report.hosts[0].tasks.find((t) => t.task === 'kubernetes_node_preflight')!;
    assert.match(task.error!, /h2 is not ready to join a cluster:\n {2}- port 10250 is already in use: the kubelet listens there/);
    assert.match(task.error!, /\n {2}- \/etc\/kubernetes\/kubelet\.conf already exists: this host has joined a cluster before; run kubeadm reset on it first/);
  } finally {
    await onHost(info, 'h2', 'systemctl stop hoist-port-10250 2>/dev/null; rm -rf /etc/kubernetes; true');
  }
  // Two nodes with one hostname (a cloned VM's): hoist verify fails both, naming the other.
  // (resolvable on h2, or sudo there would wait for DNS on every command)
  await onHost(info, 'h2', 'cp /etc/hosts /etc/hosts.hoist-test && echo "127.0.1.1 h1" >> /etc/hosts && hostname h1');
  try {
    const twins = await hoistJson(['verify', PB, '-i', inv(), '--limit', 'h1,h2']);
    assert.equal(twins.code, 2);
    assert.match(twins.report.hosts[0].error!, /hostname h1 is also h2's: give each node its own \(hostnamectl set-hostname\)$/);
    assert.match(twins.report.hosts[1].error!, /hostname h1 is also h1's/);
  } finally {
    await onHost(info, 'h2', 'hostname h2 && mv -f /etc/hosts.hoist-test /etc/hosts');
  }
  const pb = path.join(dir, 'missing.toml');
  const file = `[[tasks]]\ntask = "file"\n[tasks.params]\npath = "/etc/hoist-untouched"\ncontent = "x"\n`;
  await writeFile(pb, `${file}[[tasks]]\ntask = "kernel_module"\n[tasks.params]\nname = "nosuch"\nmodules = ["hoist_no_such_module"]\n`);
  const r = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h2']);
  assert.equal(r.code, 2);
  assert.match(
    r.report.hosts[0].error!,
    /has no module hoist_no_such_module: not loaded, not built in, and modprobe does not find it \(nothing was changed on this host\)/,
  );
  // ip_vs is neither built into this kernel nor loadable in a container, and no task loads it.
  await writeFile(pb, `${file}[[tasks]]\ntask = "sysctl"\n[tasks.params]\nname = "vs"\nsettings = { "net.ipv4.vs.amemthresh" = 1024 }\n`);
  const vs = await hoistJson(['apply', pb, '-i', inv(), '--limit', 'h2']);
  assert.equal(vs.code, 2);
  assert.match(
    vs.report.hosts[0].error!,
    /no parameter net\.ipv4\.vs\.amemthresh .*comes with the ip_vs module: put a kernel_module task that loads it before this one/,
  );
  assert.equal(
    (
      await onHost(
        info,
        'h2',
        'test -e /etc/hoist-untouched || test -e /etc/modules-load.d/nosuch.conf || test -e /etc/sysctl.d/vs.conf && echo touched || echo untouched',
      )
    ).out,
    'untouched\n',
  );
});

test('playbooks/node.toml prepares a fresh host completely in one command: node prerequisites, then containerd', async () => {
  await fleet.resetHost('h3');
  const args = ['apply', path.join(ROOT, 'playbooks', 'node.toml'), '-i', inv(), '--limit', 'h3'];
  const check = await hoistJson([...args, '--check']);
  assert.equal(check.code, 0, check.stderr);
  const apply = await hoistJson(args);
  assert.equal(apply.code, 0, JSON.stringify(apply.report.hosts.map((h) => h.error)));
  assert.deepEqual(changes(apply.report), changes(check.report));
  const titles = apply.report.hosts[0].tasks.map((t) => t.task);
  assert.ok(titles.indexOf('kubernetes_node_preflight') < titles.indexOf('containerd_install'), titles.join(', '));
  assert.ok(changes(apply.report).h3.includes('containerd running: start containerd.service'), JSON.stringify(changes(apply.report)));
  const again = await hoistJson(args);
  assert.equal(changedCount(again.report), 0, JSON.stringify(changes(again.report)));
  assert.equal((await onHost(info, 'h3', 'systemctl is-active containerd; cat /etc/sysctl.d/kubernetes-node.conf | grep -c "= 1"')).out, 'active\n3\n');
  const cri = (r: JsonReport) => r.hosts[0].tasks.find((t) => t.task === 'kubernetes_node_cri_preflight')!;
  assert.deepEqual(cri(again.report).notes, [
    "container runtime ready: /run/containerd/containerd.sock answers, cgroup driver systemd as the kubelet's",
    'container runtime preflight: ok',
  ]);

  // containerd switched to cgroupfs while the kubelet keeps kubeadm's default, systemd: the apply
  // fails on the runtime preflight, names the fix, and rolls containerd's config back.
  const cgroupfs = await hoistJson([...args, '-e', 'systemd_cgroup=false']);
  assert.equal(cgroupfs.code, 2, cgroupfs.stderr);
  assert.match(
    cri(cgroupfs.report).error!,
    /^h3 is not ready to join a cluster:\n {2}- the runtime uses the cgroupfs cgroup driver \(SystemdCgroup = false, containerd config dump\) but the kubelet will use systemd \(kubelet_cgroup_driver\): set systemd_cgroup = true for the containerd module/,
  );
  assert.match((await onHost(info, 'h3', 'containerd config dump | grep SystemdCgroup')).out, /SystemdCgroup = true/);
  // Read-only the other way round: verify with a kubelet declared on cgroupfs.
  const verify = await hoistJson(['verify', path.join(ROOT, 'playbooks', 'node.toml'), '-i', inv(), '--limit', 'h3', '-e', 'kubelet_cgroup_driver=cgroupfs']);
  assert.equal(verify.code, 2);
  assert.match(
    cri(verify.report).error!,
    /the runtime uses the systemd cgroup driver \(SystemdCgroup = true, containerd config dump\) but the kubelet will use cgroupfs \(kubelet_cgroup_driver\): set systemd_cgroup = false for the containerd module, or kubelet_cgroup_driver = "systemd"/,
  );
});
