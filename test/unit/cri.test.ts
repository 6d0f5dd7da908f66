import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriClient } from '../../src/modules/containerd/cri/client.js';
import { CriError, encodeGrpcFrame, grpcTimeout, GrpcFrameReader, GrpcStatus } from '../../src/modules/containerd/cri/grpc.js';
import { decodeFields, decodeVarint, encodeVarint, ProtobufError, ProtoMessage, ProtoWriter } from '../../src/modules/containerd/cri/protobuf.js';
import { decodeListImagesResponse, listImages } from '../support/cri-rpcs.js';
import {
  decodeStatusResponse,
  decodeVersionResponse,
  encodePullImageRequest,
  encodeStatusRequest,
  encodeVersionRequest,
} from '../../src/modules/containerd/cri/messages.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// ================================================================ protobuf

describe('protobuf wire format', () => {
  test('varint known vectors', () => {
    const vectors: [number | bigint, string][] = [
      [0, '00'],
      [1, '01'],
      [127, '7f'],
      [128, '8001'],
      [150, '9601'],
      [300, 'ac02'],
      [16384, '808001'],
      [2 ** 32, '8080808010'],
      [0xffff_ffff_ffff_ffffn, 'ffffffffffffffffff01'],
    ];
    for (const [n, want] of vectors) {
      assert.equal(hex(encodeVarint(n)), want, String(n));
      assert.deepEqual(decodeVarint(h(want), 0), { value: BigInt(n), next: want.length / 2 });
    }
    assert.throws(() => encodeVarint(-1), ProtobufError);
    assert.throws(() => encodeVarint(2n ** 64n), ProtobufError);
    assert.throws(() => decodeVarint(h('8080'), 0), /truncated varint/);
    assert.throws(() => decodeVarint(h('ffffffffffffffffffff01'), 0), /longer than 10 bytes/);
  });

  test('CRI request messages match hand-encoded bytes', () => {
    assert.equal(hex(encodeVersionRequest('v1')), '0a027631');
    assert.equal(hex(encodeVersionRequest('v1alpha2')), '0a08' + Buffer.from('v1alpha2').toString('hex'));
    assert.equal(hex(encodeStatusRequest(true)), '0801');
    assert.equal(hex(encodeStatusRequest(false)), '');
    // PullImageRequest{image: ImageSpec{image: "busybox"}}
    assert.equal(hex(encodePullImageRequest('busybox')), '0a09' + '0a07' + Buffer.from('busybox').toString('hex'));
    // + auth: AuthConfig{username: "u", password: "p", server_address: "r"} (field 2; empty fields omitted)
    assert.equal(
      hex(encodePullImageRequest('busybox', { username: 'u', password: 'p', serverAddress: 'r', auth: '' })),
      '0a090a07' + Buffer.from('busybox').toString('hex') + '1209' + '0a0175' + '120170' + '220172',
    );
    const a = new ProtoMessage(encodePullImageRequest('x', { auth: 'YTpi', identityToken: 'id', registryToken: 'rt' })).message(2)!;
    assert.deepEqual([a.string(3), a.string(5), a.string(6)], ['YTpi', 'id', 'rt']);
  });

  test('VersionResponse as containerd 2.1.9 answers it', () => {
    const bytes = h(`0a05 ${Buffer.from('0.1.0').toString('hex')} 120a ${Buffer.from('containerd').toString('hex')}
      1a0d ${Buffer.from('2.1.9+unknown').toString('hex')} 2202 7631`);
    assert.deepEqual(decodeVersionResponse(bytes), { version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '2.1.9+unknown', runtimeApiVersion: 'v1' });
    assert.deepEqual(decodeVersionResponse(Buffer.alloc(0)), { version: '', runtimeName: '', runtimeVersion: '', runtimeApiVersion: '' });
  });

  test('StatusResponse: nested repeated conditions, map entries, unknown fields skipped', () => {
    // Written out by hand from api.proto, not by hoist's encoder, so a bug shared by both can't hide.
    const txt = (t: string) => Buffer.from(t).toString('hex');
    const bytes = h(`0a55
        0a10 0a0c ${txt('RuntimeReady')} 1001
        0a41 0a0c ${txt('NetworkReady')} 1a15 ${txt('NetworkPluginNotReady')} 221a ${txt('cni plugin not initialized')}
      1211 0a06 ${txt('config')} 1207 ${txt('{"a":1}')}
      1212 0a06 ${txt('golang')} 1208 ${txt('"go1.24"')}
      1a06 0a04 ${txt('runc')}
      980607
      a906 0102030405060708
      b506 01020304`); // runtime_handlers (3, not decoded), then fields 99 varint, 101 fixed64, 102 fixed32 from a future API
    assert.deepEqual(decodeStatusResponse(bytes), {
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'cni plugin not initialized' },
      ],
      info: { config: '{"a":1}', golang: '"go1.24"' },
    });
    // A map entry is {key=1, value=2}: check the exact bytes of one.
    assert.equal(hex(new ProtoWriter().stringMap(2, { k: 'v' }).finish()), '1206' + '0a016b' + '120176');
  });

  test('repeated strings, uint64 sizes, last scalar wins, split nested messages merge', () => {
    const img = new ProtoWriter()
      .string(1, 'sha256:abc')
      .string(2, 'docker.io/library/busybox:latest')
      .string(2, 'busybox:1')
      .string(3, 'docker.io/library/busybox@sha256:def')
      .uint64(4, 2_155_339)
      .bool(8, true);
    const list = decodeListImagesResponse(new ProtoWriter().message(1, img).message(1, new ProtoWriter().string(1, 'sha256:0')).finish());
    assert.deepEqual(list, [
      {
        id: 'sha256:abc',
        repoTags: ['docker.io/library/busybox:latest', 'busybox:1'],
        repoDigests: ['docker.io/library/busybox@sha256:def'],
        size: 2_155_339,
        pinned: true,
      },
      { id: 'sha256:0', repoTags: [], repoDigests: [], size: 0, pinned: false },
    ]);
    const m = new ProtoMessage(
      new ProtoWriter().string(1, 'a').string(1, 'b').message(2, new ProtoWriter().string(1, 'x')).message(2, new ProtoWriter().string(2, 'y')).finish(),
    );
    assert.equal(m.string(1), 'b');
    assert.deepEqual([m.message(2)!.string(1), m.message(2)!.string(2)], ['x', 'y']);
    assert.equal(m.message(9), null);
  });

  test('malformed input is rejected', () => {
    assert.throws(() => decodeFields(h('0a05 6162')), /overruns/);
    assert.throws(() => decodeFields(h('0b')), /unsupported wire type 3/); // start group
    assert.throws(() => decodeFields(h('00')), /field number 0/);
    assert.throws(() => decodeFields(h('0901020304')), /truncated fixed64/);
    assert.throws(() => new ProtoMessage(h('0801')).string(1), /wire type 0, expected 2/);
    assert.throws(() => new ProtoWriter().string(0, 'x'), /invalid field number/);
  });
});

// ================================================================ gRPC framing

describe('gRPC framing', () => {
  test('5-byte prefix and reassembly across arbitrary chunking', () => {
    assert.equal(hex(encodeGrpcFrame(h('0a027631'))), '00000000040a027631');
    assert.equal(hex(encodeGrpcFrame(Buffer.alloc(0))), '0000000000');
    const stream = Buffer.concat([encodeGrpcFrame(h('0801')), encodeGrpcFrame(Buffer.alloc(300, 7)), encodeGrpcFrame(Buffer.alloc(0))]);
    for (const size of [1, 2, 3, 5, 7, 64, stream.length]) {
      const r = new GrpcFrameReader();
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) got.push(...r.push(stream.subarray(i, i + size)));
      assert.deepEqual(
        got.map((b) => b.length),
        [2, 300, 0],
        `chunk ${size}`,
      );
      assert.equal(hex(got[0]), '0801');
      assert.equal(r.pending, 0);
    }
    const partial = new GrpcFrameReader();
    assert.deepEqual(partial.push(h('0000000004 0a02')), []);
    assert.equal(partial.pending, 7);
  });

  test('grpc-timeout header values stay within 8 digits', () => {
    assert.equal(grpcTimeout(150), '150m');
    assert.equal(grpcTimeout(0.2), '1m');
    assert.equal(grpcTimeout(99_999_999), '99999999m');
    assert.equal(grpcTimeout(100_000_000), '100000S');
  });

  test('compressed or oversized messages are refused', () => {
    assert.throws(() => new GrpcFrameReader().push(h('0100000001 00')), /compressed/);
    assert.throws(() => new GrpcFrameReader(10).push(h('0000000100')), /exceeds limit/);
  });
});

// ================================================================ client against an in-process gRPC server

interface Reply {
  status?: number;
  message?: string;
  body?: Buffer;
  /** Send status in the response headers and no body (gRPC "trailers-only"). */
  trailersOnly?: boolean;
  /** Write the body one byte per DATA write. */
  dribble?: boolean;
  /** Never answer. */
  hang?: boolean;
  /** HTTP status other than 200, no gRPC status at all. */
  httpStatus?: number;
  /** End the stream with 200 but without grpc-status. */
  noStatus?: boolean;
}

type Handler = (path: string, request: Buffer, headers: http2.IncomingHttpHeaders) => Reply;

interface Seen {
  path: string;
  request: Buffer;
  headers: http2.IncomingHttpHeaders;
}

class FakeCri {
  readonly seen: Seen[] = [];
  sessions = 0;
  closedSessions = 0;
  /** Assertion failures inside the handler, reported by withServer instead of crashing the run. */
  readonly handlerErrors: unknown[] = [];
  private readonly open = new Set<http2.ServerHttp2Session>();
  private server: http2.Http2Server;
  constructor(private handler: Handler) {
    this.server = http2.createServer();
    this.server.on('session', (s) => {
      this.sessions++;
      this.open.add(s);
      s.on('close', () => {
        this.closedSessions++;
        this.open.delete(s);
      });
    });
    this.server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        // Parse the request frame independently of the client's reader.
        assert.equal(raw[0], 0, 'uncompressed');
        const len = raw.readUInt32BE(1);
        assert.equal(raw.length, 5 + len, 'exactly one request message');
        const request = raw.subarray(5);
        const path = String(headers[':path']);
        this.seen.push({ path, request, headers });
        let r: Reply;
        try {
          r = this.handler(path, request, headers);
        } catch (e) {
          this.handlerErrors.push(e);
          r = { status: GrpcStatus.INTERNAL, message: `fake server: ${(e as Error).message}`, trailersOnly: true };
        }
        if (r.hang) return;
        if (r.httpStatus) {
          stream.respond({ ':status': r.httpStatus }, { endStream: true });
          return;
        }
        const grpcHeaders = { 'grpc-status': String(r.status ?? 0), ...(r.message ? { 'grpc-message': encodeURIComponent(r.message) } : {}) };
        if (r.trailersOnly) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...grpcHeaders }, { endStream: true });
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: !r.noStatus });
        stream.on('wantTrailers', () => stream.sendTrailers(grpcHeaders));
        const frame = r.body ? encodeGrpcFrame(r.body) : Buffer.alloc(0);
        if (r.dribble) {
          for (const byte of frame) stream.write(Buffer.from([byte]));
          stream.end();
        } else {
          stream.end(frame);
        }
      });
    });
  }
  listen(path: string): Promise<void> {
    return new Promise((resolve) => this.server.listen(path, resolve));
  }
  close(): Promise<void> {
    // A failed test may leave its client open; do not wait for it forever.
    for (const s of this.open) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A Duplex that is not a net.Socket, like an ssh2 stream-local channel. */
function proxyDuplex(sock: net.Socket): Duplex {
  const d = new Duplex({
    write(chunk, _enc, cb) {
      sock.write(chunk, cb);
    },
    final(cb) {
      sock.end();
      cb();
    },
    read() {
      sock.resume();
    },
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  sock.on('data', (c) => {
    if (!d.push(c)) sock.pause();
  });
  sock.on('end', () => d.push(null));
  sock.on('error', (e) => d.destroy(e));
  return d;
}

const versionBody = (runtimeVersion: string, api: string) =>
  new ProtoWriter().string(1, '0.1.0').string(2, 'containerd').string(3, runtimeVersion).string(4, api).finish();

describe('CriClient over HTTP/2', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoist-cri-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function withServer(name: string, handler: Handler, fn: (srv: FakeCri, sock: string) => Promise<void>): Promise<void> {
    const srv = new FakeCri(handler);
    const sock = join(dir, `${name}.sock`);
    await srv.listen(sock);
    try {
      await fn(srv, sock);
    } finally {
      await srv.close();
    }
    assert.deepEqual(srv.handlerErrors, [], 'request checks in the fake server');
  }

  test('runtime.v1: Version, Status, PullImage, ListImages on one session; close is clean', async () => {
    const handler: Handler = (path, req) => {
      switch (path) {
        case '/runtime.v1.RuntimeService/Version':
          assert.equal(hex(req), '0a027631');
          return { body: versionBody('2.1.9+unknown', 'v1') };
        case '/runtime.v1.RuntimeService/Status': {
          assert.equal(new ProtoMessage(req).bool(1), true);
          const st = new ProtoWriter()
            .message(1, new ProtoWriter().string(1, 'RuntimeReady').bool(2, true))
            .message(1, new ProtoWriter().string(1, 'NetworkReady').bool(2, true));
          return { body: new ProtoWriter().message(1, st).stringMap(2, { config: '{"containerd":{}}' }).finish() };
        }
        case '/runtime.v1.ImageService/PullImage': {
          const m = new ProtoMessage(req);
          assert.equal(m.message(1)?.string(1), 'registry.local:5000/busybox:1');
          const auth = m.message(2);
          assert.deepEqual([auth?.string(1), auth?.string(2), auth?.string(4)], ['ci', 's3cret', 'registry.local:5000']);
          return { body: new ProtoWriter().string(1, 'sha256:0123').finish(), dribble: true };
        }
        case '/runtime.v1.ImageService/ListImages':
          assert.equal(req.length, 0);
          return { body: new ProtoWriter().message(1, new ProtoWriter().string(1, 'sha256:0123').string(2, 'busybox:1').uint64(4, 4096)).finish() };
        default:
          return { status: GrpcStatus.UNIMPLEMENTED, message: `unknown ${path}`, trailersOnly: true };
      }
    };
    await withServer('v1', handler, async (srv, sock) => {
      let dials = 0;
      const client = new CriClient({
        dial: async () => {
          dials++;
          return net.connect(sock);
        },
      });
      assert.equal(client.apiVersion, null);
      assert.deepEqual(await client.version(), {
        version: '0.1.0',
        runtimeName: 'containerd',
        runtimeVersion: '2.1.9+unknown',
        runtimeApiVersion: 'v1',
        api: 'v1',
      });
      assert.equal(client.apiVersion, 'v1');
      const st = await client.status(true);
      assert.deepEqual(
        st.conditions.map((c) => [c.type, c.status]),
        [
          ['RuntimeReady', true],
          ['NetworkReady', true],
        ],
      );
      assert.equal(st.info.config, '{"containerd":{}}');
      assert.equal(
        await client.pullImage('registry.local:5000/busybox:1', { username: 'ci', password: 's3cret', serverAddress: 'registry.local:5000' }),
        'sha256:0123',
      );
      assert.deepEqual(await listImages(client), [{ id: 'sha256:0123', repoTags: ['busybox:1'], repoDigests: [], size: 4096, pinned: false }]);

      assert.equal(dials, 1, 'all calls share one connection');
      const hdr = srv.seen[0].headers;
      assert.equal(hdr['content-type'], 'application/grpc');
      assert.equal(hdr.te, 'trailers');
      assert.equal(hdr[':method'], 'POST');
      assert.equal(hdr['grpc-timeout'], '10000m');
      assert.equal(srv.seen[2].headers['grpc-timeout'], '600000m', 'pulls get the long deadline');

      await client.close();
      await client.close();
      await new Promise((r) => setImmediate(r));
      assert.equal(srv.closedSessions, srv.sessions);
    });
  });

  test('falls back to runtime.v1alpha2 on UNIMPLEMENTED and remembers it', async () => {
    const handler: Handler = (path, req) => {
      if (path.startsWith('/runtime.v1.'))
        return { status: GrpcStatus.UNIMPLEMENTED, message: 'unknown service runtime.v1.RuntimeService', trailersOnly: true };
      if (path === '/runtime.v1alpha2.RuntimeService/Version') {
        assert.equal(new ProtoMessage(req).string(1), 'v1alpha2');
        return { body: versionBody('v1.4.13', 'v1alpha2') };
      }
      if (path === '/runtime.v1alpha2.RuntimeService/Status') return { body: Buffer.alloc(0) };
      return { status: GrpcStatus.UNIMPLEMENTED, trailersOnly: true };
    };
    await withServer('alpha', handler, async (srv, sock) => {
      const client = new CriClient({ dial: async () => net.connect(sock) });
      const v = await client.version();
      assert.equal(v.api, 'v1alpha2');
      assert.equal(v.runtimeVersion, 'v1.4.13');
      assert.equal(client.apiVersion, 'v1alpha2');
      assert.deepEqual(await client.status(), { conditions: [], info: {} });
      assert.deepEqual(
        srv.seen.map((s) => s.path),
        ['/runtime.v1.RuntimeService/Version', '/runtime.v1alpha2.RuntimeService/Version', '/runtime.v1alpha2.RuntimeService/Status'],
      );
      await client.close();
    });
  });

  test('errors: trailers-only, status in trailers, both APIs unimplemented, auth never in messages', async () => {
    const handler: Handler = (path) => {
      if (path.endsWith('/Version')) return { status: GrpcStatus.UNIMPLEMENTED, message: 'nope', trailersOnly: true };
      if (path.endsWith('/Status')) return { status: GrpcStatus.PERMISSION_DENIED, message: 'permission denied: uid 1000', trailersOnly: true };
      if (path.endsWith('/PullImage')) {
        return { status: GrpcStatus.NOT_FOUND, message: 'failed to resolve reference "r/x:1": r/x:1: not found — 100%' };
      }
      return { status: GrpcStatus.INTERNAL };
    };
    await withServer('errors', handler, async (srv, sock) => {
      const client = new CriClient({ dial: async () => net.connect(sock), apiVersion: 'v1' });
      await assert.rejects(client.status(), (e: unknown) => {
        assert.ok(e instanceof CriError);
        assert.equal(e.code, GrpcStatus.PERMISSION_DENIED);
        assert.equal(e.grpcMessage, 'permission denied: uid 1000');
        assert.equal(e.method, '/runtime.v1.RuntimeService/Status');
        assert.match(e.message, /PERMISSION_DENIED: permission denied/);
        return true;
      });
      await assert.rejects(client.pullImage('r/x:1', { username: 'ci', password: 'hunter2-secret', auth: 'Y2k6aHVudGVyMg==' }), (e: unknown) => {
        assert.ok(e instanceof CriError);
        assert.equal(e.code, GrpcStatus.NOT_FOUND);
        assert.equal(e.grpcMessage, 'failed to resolve reference "r/x:1": r/x:1: not found — 100%');
        const all = `${e.message} ${e.stack} ${JSON.stringify(e)}`;
        assert.ok(!all.includes('hunter2') && !all.includes('Y2k6'), 'credentials leaked into the error');
        return true;
      });
      // Forced v1 does not fall back.
      await assert.rejects(client.version(), (e: unknown) => e instanceof CriError && e.code === GrpcStatus.UNIMPLEMENTED);
      const negotiating = new CriClient({ dial: async () => net.connect(sock) });
      await assert.rejects(
        negotiating.version(),
        (e: unknown) => e instanceof CriError && e.code === GrpcStatus.UNIMPLEMENTED && e.method === '/runtime.v1alpha2.RuntimeService/Version',
      );
      assert.equal(negotiating.apiVersion, null);
      await client.close();
      await negotiating.close();
    });
  });

  test('protocol violations: HTTP error status, missing grpc-status, empty body', async () => {
    const handler: Handler = (path) => {
      if (path.endsWith('/Version')) return { httpStatus: 503 };
      if (path.endsWith('/Status')) return { noStatus: true, body: Buffer.alloc(0) };
      return {}; // OK status but no message
    };
    await withServer('proto', handler, async (_srv, sock) => {
      const client = new CriClient({ dial: async () => net.connect(sock), apiVersion: 'v1' });
      await assert.rejects(client.version(), (e: unknown) => e instanceof CriError && e.code === GrpcStatus.UNAVAILABLE && /HTTP status 503/.test(e.message));
      await assert.rejects(client.status(), (e: unknown) => e instanceof CriError && e.code === GrpcStatus.INTERNAL && /without grpc-status/.test(e.message));
      await assert.rejects(listImages(client), (e: unknown) => e instanceof CriError && /expected one response message, got 0/.test(e.message));
      await client.close();
    });
  });

  test('per-call timeout, then recovery on a fresh connection', async () => {
    let hang = true;
    const handler: Handler = () => (hang ? { hang: true } : { body: versionBody('v1.7.34', 'v1') });
    await withServer('slow', handler, async (srv, sock) => {
      let dials = 0;
      const client = new CriClient({
        dial: async () => {
          dials++;
          return net.connect(sock);
        },
        timeoutMs: 150,
      });
      const t0 = Date.now();
      await assert.rejects(client.version(), (e: unknown) => e instanceof CriError && e.code === GrpcStatus.DEADLINE_EXCEEDED);
      const took = Date.now() - t0;
      assert.ok(took >= 140 && took < 2000, `timed out after ${took} ms`);
      assert.equal(srv.seen[0].headers['grpc-timeout'], '150m');
      hang = false;
      assert.equal((await client.version({ timeoutMs: 2000 })).runtimeVersion, 'v1.7.34');
      assert.equal(dials, 2);
      await client.close();
    });
  });

  test('works over a Duplex that is not a socket (as an SSH channel is)', async () => {
    await withServer(
      'duplex',
      () => ({ body: versionBody('2.3.4', 'v1') }),
      async (_srv, sock) => {
        const client = new CriClient({ dial: async () => proxyDuplex(net.connect(sock)) });
        assert.equal((await client.version()).runtimeVersion, '2.3.4');
        assert.equal((await client.version()).runtimeVersion, '2.3.4');
        await client.close();
      },
    );
  });

  test('unreachable socket gives UNAVAILABLE', async () => {
    const client = new CriClient({ dial: async () => net.connect(join(dir, 'absent.sock')), timeoutMs: 2000 });
    await assert.rejects(client.version(), (e: unknown) => e instanceof CriError && e.code === GrpcStatus.UNAVAILABLE && /ENOENT/.test(e.message));
    await client.close();
  });
});
