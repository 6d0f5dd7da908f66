import { FanOut } from '../../src/runner/fan-out.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sysctl, { normalize, parseLive, procPath, renderSysctlConf } from '../../src/tasks/sysctl.js';
import { PlanState, type TaskPlan } from '../../src/tasks/types.js';
import { parseFacts } from '../../src/facts/facts.js';
import { sha256 } from '../../src/util/hash.js';
import { Logger } from '../../src/util/log.js';
import { parseWith } from '../../src/util/schema.js';
import { FakeHost } from '../support/fake-host.js';

const params = { name: 'k8s', settings: { 'net.ipv4.ip_forward': 1, 'net.ipv4.tcp_rmem': '4096 87380 6291456' } };

/** Plans the task against a host whose conf file and /proc/sys hold what the test says. */
function plan(live: Record<string, string>, conf?: string, diff = false): TaskPlan | Promise<TaskPlan> {
  const confProbe = {
    out: '',
    code: 0,
    file:
      conf === undefined
        ? { exists: false }
        : { exists: true, sha256: sha256(conf), mode: 0o644, owner: 'root', group: 'root', ...(diff ? { content: Buffer.from(conf) } : {}) },
  };
  const liveProbe = {
    out: Object.entries(live)
      .map(([k, v]) => `live ${k}=${v}`)
      .join('\n'),
    code: 0,
  };
  const controller = { playbookDir: '.', inventoryDir: '.', log: new Logger(), progress: () => undefined, deliver: new FanOut(new Logger()).deliver };
  return sysctl.plan(params, {
    host: { name: 'h', address: 'h', become: false, becomeUser: 'root', groups: [], vars: {}, varLayers: [] },
    vars: {},
    settings: undefined,
    options: { check: false, diff, offline: true },
    controller,
    facts: parseFacts('init=systemd'),
    prepared: undefined,
    state: new PlanState(),
    live: undefined,
    probe: (id) => (id === 'conf' ? confProbe : liveProbe),
  });
}

const want = renderSysctlConf('k8s', params.settings);

test('sysctl: a fresh host gets the drop-in and the live values', async () => {
  const p = await plan({ 'net.ipv4.ip_forward': '0', 'net.ipv4.tcp_rmem': '4096\t131072\t6291456' });
  assert.deepEqual(
    p.actions.map((a) => a.summary),
    ['create /etc/sysctl.d/k8s.conf', 'set net.ipv4.ip_forward 0 → 1, net.ipv4.tcp_rmem 4096 131072 6291456 → 4096 87380 6291456'],
  );
  assert.equal(want, '# Managed by hoist (sysctl task "k8s").\nnet.ipv4.ip_forward = 1\nnet.ipv4.tcp_rmem = 4096 87380 6291456\n');
});

test('sysctl: nothing to do when file and kernel agree (tabs in /proc/sys are not a difference)', async () => {
  const p = await plan({ 'net.ipv4.ip_forward': '1', 'net.ipv4.tcp_rmem': '4096\t87380\t6291456' }, want);
  assert.deepEqual(p.actions, []);
});

test('sysctl: a value changed at runtime is set again, the file left alone; --diff shows a file change', async () => {
  const p = await plan({ 'net.ipv4.ip_forward': '0', 'net.ipv4.tcp_rmem': '4096 87380 6291456' }, want);
  assert.deepEqual(
    p.actions.map((a) => a.summary),
    ['set net.ipv4.ip_forward 0 → 1'],
  );
  const old = want.replace('ip_forward = 1', 'ip_forward = 0');
  const d = await plan({ 'net.ipv4.ip_forward': '1', 'net.ipv4.tcp_rmem': '4096 87380 6291456' }, old, true);
  assert.equal(d.actions.length, 1);
  assert.match(d.actions[0].diff!, /-net\.ipv4\.ip_forward = 0\n\+net\.ipv4\.ip_forward = 1/);
});

test('sysctl: applying writes each differing value to /proc/sys, quoted', async () => {
  const conn = new FakeHost();
  const p = await plan({ 'net.ipv4.ip_forward': '0', 'net.ipv4.tcp_rmem': '4096 87380 6291456' }, want);
  const set = p.actions[0];
  await set.run(conn, { options: { check: false, diff: false, offline: true }, log: new Logger(), state: new PlanState(), note: () => undefined });
  assert.deepEqual(conn.ran, ["printf '%s\\n' 1 > /proc/sys/net/ipv4/ip_forward"]);
});

test('sysctl: a parameter the kernel lacks is a plan error; bad names and values are input errors', async () => {
  await assert.rejects(
    async () => plan({ 'net.ipv4.ip_forward': '1' }),
    /has no parameter net\.ipv4\.tcp_rmem \(nothing under \/proc\/sys\/net\/ipv4\/tcp_rmem\)/,
  );
  const bad = parseWith(sysctl.params, { name: 'k8s.conf/x', settings: { 'a.b': 'two\nlines', 'c.d': true } });
  assert.deepEqual(
    bad.issues.map((i) => i.path.join('.')),
    ['name', 'settings.a.b', 'settings.c.d'],
  );
});

test('sysctl helpers', () => {
  assert.equal(procPath('net.ipv4.conf.all.rp_filter'), '/proc/sys/net/ipv4/conf/all/rp_filter');
  assert.equal(normalize(' 1\t2  3 '), '1 2 3');
  assert.deepEqual(
    [...parseLive({ out: 'live a.b=1\nlive x.y=2\njunk', code: 0 }, ['a.b', 'c.d'])],
    [
      ['a.b', '1'],
      ['c.d', undefined],
    ],
  );
});
