import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { GrpcChannel } from '../../src/modules/containerd/cri/grpc.js';
import { TRANSPORT_FAILURE, unixBridgeCommand } from '../../src/ssh/unix-bridge.js';

test('a CRI call over a bridge that found no program names the missing programs, not an HTTP/2 reset', async () => {
  const why =
    'h1: cannot open /run/containerd/containerd.sock: no program to reach /run/containerd/containerd.sock with: none of perl, python3, socat, nc is installed on the host';
  // The bridge's channel: the command exits 127 as soon as it starts. Over SSH the channel's end of
  // data comes first, the exit status (which the connection turns into this error) just after it.
  const dial = async () => {
    let ended = false;
    const d: Duplex = new Duplex({
      read() {},
      write(_chunk, _enc, done) {
        done();
        if (ended) return;
        ended = true;
        setImmediate(() => {
          d.push(null);
          setTimeout(() => {
            d.emit(TRANSPORT_FAILURE, new Error(why));
            d.destroy(new Error(why));
          }, 20);
        });
      },
    });
    return d;
  };
  const ch = new GrpcChannel({ dial });
  await assert.rejects(ch.unary('/runtime.v1.RuntimeService/Version', Buffer.alloc(0), 5000), (e: Error) => {
    assert.match(e.message, /none of perl, python3, socat, nc is installed on the host/);
    assert.doesNotMatch(e.message, /rst code/);
    return true;
  });
  await ch.close();
});

test('the bridge says what to install when no program is there', () => {
  const r = spawnSync('/bin/bash', ['-c', unixBridgeCommand('/dev/null', 'socat')], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
  assert.equal(r.status, 2); // not a socket: checked first
  const dir = spawnSync(
    'bash',
    ['-c', 'd=$(mktemp -d); python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" $d/s && echo $d/s'],
    { encoding: 'utf8' },
  ).stdout.trim();
  if (!dir) return;
  const r2 = spawnSync('/bin/bash', ['-c', unixBridgeCommand(dir, 'socat')], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
  assert.equal(r2.status, 127);
  assert.match(r2.stderr, /none of socat is installed on the host; install socat/);
});
