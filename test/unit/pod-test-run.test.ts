// The pod test's sequence against a fake CRI runtime on a local HTTP/2 socket: what is called in
// which order, and that a failing step still leaves nothing behind.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { ProtoWriter } from '../../src/modules/containerd/cri/protobuf.js';
import { runPodTest, type PodTestOptions } from '../../src/modules/containerd/pod-test.js';

type Reply = { body?: Buffer; status?: number; message?: string };
type Handler = (method: string) => Reply;

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-podtest-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function withRuntime(handler: Handler, f: (sock: string, calls: string[]) => Promise<void>): Promise<void> {
  const calls: string[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      const method = String(headers[':path']).split('/').pop()!;
      calls.push(method);
      const r = handler(method);
      const trailers = { 'grpc-status': String(r.status ?? 0), ...(r.message ? { 'grpc-message': encodeURIComponent(r.message) } : {}) };
      if (r.status) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...trailers }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      const body = r.body ?? Buffer.alloc(0);
      const head = Buffer.alloc(5);
      head.writeUInt32BE(body.length, 1);
      stream.end(Buffer.concat([head, body]));
    });
  });
  const sock = path.join(dir, `cri-${Math.random().toString(36).slice(2)}.sock`);
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    await f(sock, calls);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const id = (s: string) => new ProtoWriter().string(1, s).finish();
const condition = (type: string) => new ProtoWriter().string(1, type).bool(2, true);
const HEALTHY: Record<string, Buffer> = {
  Status: new ProtoWriter().message(1, new ProtoWriter().message(1, condition('RuntimeReady')).message(1, condition('NetworkReady'))).finish(),
  ListPodSandbox: Buffer.alloc(0),
  ImageStatus: new ProtoWriter().message(1, new ProtoWriter().string(1, 'sha256:img')).finish(),
  RunPodSandbox: id('pod1'),
  PodSandboxStatus: new ProtoWriter().message(1, new ProtoWriter().message(5, new ProtoWriter().string(1, '10.88.0.7'))).finish(),
  CreateContainer: id('ctr1'),
  ContainerStatus: new ProtoWriter().message(1, new ProtoWriter().uint64(3, 1)).finish(),
  ExecSync: new ProtoWriter().string(1, '2: eth0    inet 10.88.0.7/16 brd 10.88.255.255 scope global eth0\n').finish(),
};

function options(sock: string): PodTestOptions {
  return {
    socket: sock,
    image: 'busybox',
    sandboxImage: 'registry.k8s.io/pause:3.10',
    systemdCgroup: true,
    restrictOomScoreAdj: false,
    cniConfDir: '/etc/cni/net.d',
    hoistCni: true,
    registries: {},
    pullTimeoutMs: 5000,
    callTimeoutMs: 5000,
  };
}

function conn(sock: string, oomAnswer = 'cannot') {
  const execs: string[] = [];
  return {
    execs,
    openUnixStream: async () => net.connect(sock),
    exec: async (script: string) => {
      execs.push(script);
      return { stdout: `${oomAnswer}\n`, stderr: '', code: 0 };
    },
  };
}

describe('runPodTest', () => {
  it("runs the pod, removes an earlier test's sandbox first, and cleans up after itself", async () => {
    let lists = 0;
    await withRuntime(
      (m) => {
        // The first list finds an interrupted test's sandbox; the last one (after clean-up) nothing.
        if (m === 'ListPodSandbox' && lists++ === 0) return { body: new ProtoWriter().message(1, new ProtoWriter().string(1, 'old').uint64(3, 1)).finish() };
        return { body: HEALTHY[m] };
      },
      async (sock, calls) => {
        const c = conn(sock);
        const r = await runPodTest(c, options(sock));
        assert.deepEqual(r.problems, []);
        assert.equal(r.ok, true);
        assert.equal(r.address, '10.88.0.7');
        assert.deepEqual(calls, [
          'Status',
          'ListPodSandbox',
          'StopPodSandbox',
          'RemovePodSandbox',
          'ImageStatus',
          'RunPodSandbox',
          'PodSandboxStatus',
          'CreateContainer',
          'StartContainer',
          'ContainerStatus',
          'ExecSync',
          'StopContainer',
          'RemoveContainer',
          'StopPodSandbox',
          'RemovePodSandbox',
          'ListPodSandbox',
        ]);
        assert.deepEqual(c.execs, []);
      },
    );
  });

  it('a container that cannot be created still has its sandbox removed', async () => {
    await withRuntime(
      (m) => (m === 'CreateContainer' ? { status: 2, message: 'failed to create containerd container: boom' } : { body: HEALTHY[m] }),
      async (sock, calls) => {
        const r = await runPodTest(conn(sock), options(sock));
        assert.equal(r.ok, false);
        assert.deepEqual(r.problems, ['CreateContainer: failed to create containerd container: boom']);
        assert.deepEqual(calls.slice(calls.indexOf('CreateContainer')), ['CreateContainer', 'StopPodSandbox', 'RemovePodSandbox', 'ListPodSandbox']);
      },
    );
  });

  it('runc failing on oom_score_adj: the node is asked, and the advice names restrict_oom_score_adj', async () => {
    const runc =
      "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: can't get final child's PID from pipe: EOF: unknown";
    await withRuntime(
      (m) => (m === 'RunPodSandbox' ? { status: 2, message: runc } : { body: HEALTHY[m] }),
      async (sock, calls) => {
        const c = conn(sock, 'cannot');
        const r = await runPodTest(c, options(sock));
        assert.equal(r.ok, false);
        assert.equal(r.problems.length, 1);
        assert.match(r.problems[0], /^RunPodSandbox: runc could not start the pod: .*this node cannot lower oom_score_adj .*set restrict_oom_score_adj = true/);
        assert.equal(c.execs.length, 1);
        // No sandbox was made, so there is nothing to stop.
        assert.equal(calls.at(-1), 'RunPodSandbox');
      },
    );
  });

  it('a node without a CNI network fails at Status, before any pod', async () => {
    const notReady = new ProtoWriter()
      .message(
        1,
        new ProtoWriter()
          .message(1, condition('RuntimeReady'))
          .message(1, new ProtoWriter().string(1, 'NetworkReady').string(3, 'NetworkPluginNotReady').string(4, 'cni plugin not initialized')),
      )
      .finish();
    await withRuntime(
      (m) => ({ body: m === 'Status' ? notReady : HEALTHY[m] }),
      async (sock, calls) => {
        const r = await runPodTest(conn(sock), { ...options(sock), hoistCni: false });
        assert.match(
          r.problems.join('\n'),
          /^Status: NetworkReady is false \(NetworkPluginNotReady: cni plugin not initialized\) \(no network configuration in \/etc\/cni\/net\.d: .*cni_conflist = "bridge"/,
        );
        assert.deepEqual(calls, ['Status']);
      },
    );
  });
});
