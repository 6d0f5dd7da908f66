import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criCheck } from '../../src/modules/containerd/tasks/verify.js';

/** Frames one gRPC message by hand (flag, big-endian length, payload), apart from hoist's framing code. */
const frame = (payload: Buffer) => Buffer.concat([Buffer.from([0, ...[24, 16, 8, 0].map((s) => (payload.length >>> s) & 0xff)]), payload]);
/** A length-delimited string field, as protobuf writes one (field number, wire type 2). */
const str = (field: number, s: string) => Buffer.concat([Buffer.from([(field << 3) | 2, Buffer.byteLength(s)]), Buffer.from(s)]);

/**
 * A CRI server that answers Version, Status (RuntimeReady) and PullImage, except that pulls of an
 * image named "stall" never answer: the client's deadline has to end them.
 */
function fakeCri(o: { silentVersions?: number; versionAfterStatus?: boolean; only?: string } = {}): {
  server: http2.Http2Server;
  sessions: () => number;
  paths: string[];
} {
  let sessions = 0;
  let silent = o.silentVersions ?? 0;
  const paths: string[] = [];
  let statusSeen = () => {};
  const statusArrived = new Promise<void>((resolve) => (statusSeen = resolve));
  const server = http2.createServer();
  server.on('session', () => sessions++);
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', async () => {
      const path = String(headers[':path']);
      paths.push(path);
      const request = Buffer.concat(chunks).subarray(5).toString('latin1');
      let body: Buffer;
      if (o.only && !path.startsWith(`/runtime.${o.only}.`)) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '12', 'grpc-message': 'unknown service' }));
        return stream.end();
      }
      if (path.endsWith('/Status')) statusSeen();
      // A server that answers Version only once Status was asked: a client that waits for Version first never gets an answer.
      if (path.endsWith('/Version') && o.versionAfterStatus) await statusArrived;
      if (path.endsWith('/Version') && silent > 0) {
        silent--;
        return;
      }
      if (path.endsWith('/Version')) body = Buffer.concat([str(1, '0.1.0'), str(2, 'containerd'), str(3, 'v2.1.9'), str(4, 'v1')]);
      else if (path.endsWith('/Status'))
        body = str(1, Buffer.concat([str(1, Buffer.concat([str(1, 'RuntimeReady'), Buffer.from([0x10, 1])]).toString('latin1'))]).toString('latin1'));
      else if (path.endsWith('/PullImage')) {
        if (request.includes('stall')) return;
        body = str(1, 'sha256:abc');
      } else body = Buffer.alloc(0);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame(body));
    });
  });
  return { server, sessions: () => sessions, paths };
}

/** What a HostConnection offers verify: a new channel to the socket on each call, counted. */
function dialer(sock: string): { openUnixStream: () => Promise<net.Socket>; dials: number } {
  const conn = {
    dials: 0,
    openUnixStream: async () => {
      conn.dials++;
      return net.connect(sock);
    },
  };
  return conn;
}

test('verify: a pull test after a timed-out pull runs on a fresh channel and succeeds', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-verify-'));
  const sock = join(dir, 'cri.sock');
  const { server, sessions } = fakeCri();
  await new Promise<void>((r) => server.listen(sock, r));
  const conn = dialer(sock);
  try {
    const r = await criCheck(conn, '/run/containerd/containerd.sock', ['registry.test/stall:1', 'registry.test/ok:1'], undefined, { pullMs: 300 });
    assert.equal(r.problems.length, 1, r.problems.join('\n'));
    assert.match(r.problems[0], /stall/);
    assert.ok(
      r.lines.some((l) => /pull registry\.test\/ok:1: ok \(sha256:abc\)/.test(l)),
      r.lines.join('\n'),
    );
    assert.equal(conn.dials, 2, 'the timed-out session is dropped and the next pull dials again');
    assert.equal(sessions(), 2);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

for (const silent of [1, 2]) {
  test(`verify: a CRI Version that gets no answer ${silent === 1 ? 'once is asked again on a fresh channel' : 'twice fails the check'}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoist-verify-'));
    const sock = join(dir, 'cri.sock');
    const { server } = fakeCri({ silentVersions: silent });
    await new Promise<void>((r) => server.listen(sock, r));
    const conn = dialer(sock);
    try {
      const r = await criCheck(conn, '/run/containerd/containerd.sock', [], undefined, { callMs: 200 });
      if (silent === 1) {
        assert.deepEqual(r.problems, []);
        assert.ok(
          r.lines.some((l) => /CRI Version answered on a second try \(no answer within 200 ms the first time\)/.test(l)),
          r.lines.join('\n'),
        );
        assert.ok(
          r.lines.some((l) => /CRI v1: containerd v2\.1\.9, RuntimeReady=true/.test(l)),
          r.lines.join('\n'),
        );
      } else {
        assert.equal(r.problems.length, 1);
        assert.match(r.problems[0], /CRI call over the containerd socket failed: .*DEADLINE_EXCEEDED: no answer within 200 ms/);
      }
      assert.equal(conn.dials, 2);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

for (const only of ['v1', 'v1alpha2']) {
  test(`verify: CRI Status goes out beside Version, in the same round trip (a server with ${only} only)`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoist-verify-'));
    const sock = join(dir, 'cri.sock');
    const { server, paths } = fakeCri({ versionAfterStatus: true, only });
    await new Promise<void>((r) => server.listen(sock, r));
    const conn = dialer(sock);
    try {
      const r = await criCheck(conn, '/run/containerd/containerd.sock', [], undefined, { callMs: 1000 });
      assert.deepEqual(r.problems, []);
      assert.ok(
        r.lines.some((l) => l === `CRI ${only}: containerd v2.1.9, RuntimeReady=true`),
        r.lines.join('\n'),
      );
      assert.equal(conn.dials, 1, 'both calls share one channel');
      assert.ok(paths.includes(`/runtime.${only}.RuntimeService/Status`), paths.join(' '));
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
