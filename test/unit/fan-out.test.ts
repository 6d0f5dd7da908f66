import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FanOut } from '../../src/runner/fan-out.js';
import { Logger } from '../../src/util/log.js';
import { FakeHost } from '../support/fake-host.js';

const FILE = { name: 'bundle.tar.gz', sha256: 'c'.repeat(64), size: 1000, remotePath: '/var/lib/hoist/artifacts/c-bundle.tar.gz' };
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fleet(n: number): FakeHost[] {
  const hosts = Array.from({ length: n }, (_, i) => new FakeHost(`h${i + 1}`, `10.0.0.${i + 1}`));
  const byAddress = new Map(hosts.map((h) => [h.endpoint.host, h]));
  for (const h of hosts) h.peers = byAddress;
  return hosts;
}

/** Delivers FILE to every host at once; records how many controller sends ran side by side. */
async function deliverAll(hosts: FakeHost[], fan: FanOut, peers: boolean): Promise<{ from: string[]; pushed: string[]; maxPushing: number }> {
  let pushing = 0;
  let maxPushing = 0;
  const pushed: string[] = [];
  const from = await Promise.all(
    hosts.map((h) =>
      fan.deliver(h, FILE, {
        peers,
        peerAddress: h.endpoint.host,
        push: async () => {
          maxPushing = Math.max(maxPushing, ++pushing);
          await tick(20);
          pushing--;
          pushed.push(h.endpoint.name);
        },
      }),
    ),
  );
  return { from, pushed, maxPushing };
}

test('with peers, the controller sends the first hosts and the rest copy from hosts that hold the file', async () => {
  const hosts = fleet(20);
  for (const h of hosts) h.copyMs = 20;
  const r = await deliverAll(hosts, new FanOut(new Logger(), { controller: 2, holder: 2 }), true);
  assert.ok(r.maxPushing <= 2, `at most 2 controller sends at once, saw ${r.maxPushing}`);
  // Once a host holds the file, the controller sends no more: holders triple each round.
  assert.equal(r.pushed.length, 2, `controller sent ${r.pushed.length} of 20`);
  assert.equal(r.from.filter((f) => f === 'controller').length, r.pushed.length);
  const copied = hosts.filter((h) => h.received.length === 1);
  assert.equal(copied.length + r.pushed.length, 20, 'every host got the file exactly once');
  // No holder serves more than two at once: each served file is a port it opened, bounded per round.
  const served = hosts.map((h) => h.served.length);
  assert.equal(
    served.reduce((a, b) => a + b, 0),
    copied.length,
  );
  for (const h of copied) assert.match(h.received[0], /^10\.0\.0\.\d+:4\d{4}$/);
});

test('without peers, every host is sent the file by the controller, a bounded number at once', async () => {
  const hosts = fleet(9);
  const r = await deliverAll(hosts, new FanOut(new Logger(), { controller: 3, holder: 2 }), false);
  assert.equal(r.pushed.length, 9);
  assert.equal(r.maxPushing, 3);
  assert.ok(hosts.every((h) => h.served.length === 0 && h.received.length === 0));
});

test('a holder that served wrong bytes is not asked again, and its receiver gets the file elsewhere', async () => {
  const [a, b, c] = fleet(3);
  const fan = new FanOut(new Logger(), { controller: 1, holder: 2 });
  const push = (h: FakeHost) => ({ peers: true, peerAddress: h.endpoint.host, push: async () => void h.bytesPushed++ });
  assert.equal(await fan.deliver(a, FILE, push(a)), 'controller');
  b.receiveFails = 'source';
  assert.equal(await fan.deliver(b, FILE, push(b)), 'controller', 'b falls back to the controller');
  assert.equal(a.served.length, 1);
  // c must not be sent to a, which served bad bytes: b holds it now.
  assert.equal(await fan.deliver(c, FILE, push(c)), 'h2');
  assert.equal(a.served.length, 1);
  assert.deepEqual(c.received, ['10.0.0.2:40001']);
});

test('once two holders could not be reached, host-to-host copies stop for the run', async () => {
  const hosts = fleet(6);
  const fan = new FanOut(new Logger(), { controller: 1, holder: 2 });
  const how = (h: FakeHost) => ({ peers: true, peerAddress: h.endpoint.host, push: async () => undefined });
  await fan.deliver(hosts[0], FILE, how(hosts[0]));
  hosts[1].receiveFails = 'route';
  hosts[2].receiveFails = 'route';
  // h2 can't reach h1; h3 can't reach h1 either, nor h2: two holders unreachable.
  assert.equal(await fan.deliver(hosts[1], FILE, how(hosts[1])), 'controller');
  assert.equal(await fan.deliver(hosts[2], FILE, how(hosts[2])), 'controller');
  for (const h of hosts.slice(3)) assert.equal(await fan.deliver(h, FILE, how(h)), 'controller');
  assert.deepEqual(
    hosts.map((h) => h.served.length),
    [2, 1, 0, 0, 0, 0],
    'nothing is tried host to host after that',
  );
});

test('one holder nobody reaches is dropped without stopping copies from the others', async () => {
  const [a, b, c, d] = fleet(4);
  const fan = new FanOut(new Logger(), { controller: 1, holder: 2 });
  const how = (h: FakeHost, address = h.endpoint.host) => ({ peers: true, peerAddress: address, push: async () => undefined });
  // a says it is at an address no host can use; the fake receivers fail to reach it.
  await fan.deliver(a, FILE, how(a, '192.0.2.1'));
  for (const h of [b, c, d]) h.cannotReach.add('192.0.2.1');
  assert.equal(await fan.deliver(b, FILE, how(b)), 'controller');
  assert.equal(await fan.deliver(c, FILE, how(c)), 'h2', 'c fails on a, then copies from b');
  assert.equal(await fan.deliver(d, FILE, how(d)), 'h2', 'a, unreachable from two receivers, is not asked again');
  assert.equal(a.served.length, 2);
});

test('a short copy counts against its holder only when a second receiver gets one too', async () => {
  const [a, b, c, d] = fleet(4);
  const fan = new FanOut(new Logger(), { controller: 1, holder: 2 });
  const how = (h: FakeHost) => ({ peers: true, peerAddress: h.endpoint.host, push: async () => undefined });
  await fan.deliver(a, FILE, how(a));
  b.receiveFails = 'short';
  assert.equal(await fan.deliver(b, FILE, how(b)), 'controller');
  b.receiveFails = undefined;
  c.receiveFails = 'short';
  assert.equal(await fan.deliver(c, FILE, how(c)), 'controller', 'c is short from a, then from b: b has one strike');
  c.receiveFails = undefined;
  // a had short copies for two receivers: passed over; b only one: still asked.
  assert.equal(await fan.deliver(d, FILE, how(d)), 'h2');
});

test('a copy the receiver checked stands even when its server ends without saying so', async () => {
  const [a, b] = fleet(2);
  const fan = new FanOut(new Logger(), { controller: 1, holder: 2 });
  await fan.deliver(a, FILE, { peers: true, peerAddress: a.endpoint.host, push: async () => undefined });
  // The receive succeeds but does not settle the server's `sent`: stop() rejects it.
  b.peers = new Map();
  assert.equal(await fan.deliver(b, FILE, { peers: true, peerAddress: b.endpoint.host, push: async () => undefined }), 'h1');
});

test("a receiver's own failure is its error, not a reason to try elsewhere", async () => {
  const [a, b] = fleet(2);
  const fan = new FanOut(new Logger(), { controller: 1, holder: 2 });
  await fan.deliver(a, FILE, { peers: true, peerAddress: a.endpoint.host, push: async () => undefined });
  b.receiveFails = 'receiver';
  let pushed = false;
  await assert.rejects(fan.deliver(b, FILE, { peers: true, peerAddress: b.endpoint.host, push: async () => void (pushed = true) }), /h2 could not fetch/);
  assert.equal(pushed, false);
});

test('a holder that cannot serve is passed over', async () => {
  const [a, b] = fleet(2);
  const fan = new FanOut(new Logger(), { controller: 1, holder: 2 });
  await fan.deliver(a, FILE, { peers: true, peerAddress: a.endpoint.host, push: async () => undefined });
  a.serveFails = true;
  assert.equal(await fan.deliver(b, FILE, { peers: true, peerAddress: b.endpoint.host, push: async () => undefined }), 'controller');
});
