// The pod test's CRI messages against bytes worked out by hand from cri-api's runtime.v1
// api.proto (tag = field << 3 | wire type), so the encoder is not checked by its own decoder.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeContainerStatusResponse,
  decodeExecSyncResponse,
  decodeIdResponse,
  decodeImageStatusResponse,
  decodeListPodSandboxResponse,
  decodePodSandboxStatusResponse,
  encodeCreateContainerRequest,
  encodeExecSyncRequest,
  encodeIdRequest,
  encodeImageStatusRequest,
  encodeListPodSandboxRequest,
  encodeRunPodSandboxRequest,
  encodeStopContainerRequest,
  type PodSandboxSpec,
} from '../../src/modules/containerd/cri/pod.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const sandbox: PodSandboxSpec = { name: 'n', uid: 'u', namespace: 's', cgroupParent: 'p', labels: { a: 'b' } };
// PodSandboxConfig: metadata(1) {name(1) "n", uid(2) "u", namespace(3) "s"}, labels(6) {key(1) "a", value(2) "b"}, linux(8) {cgroup_parent(1) "p"}
const SANDBOX_CONFIG = '0a09 0a016e 120175 1a0173   3206 0a0161 120162   4203 0a0170';

describe('CRI pod requests, byte for byte', () => {
  it('RunPodSandboxRequest: config(1), no runtime handler', () => {
    assert.deepEqual(encodeRunPodSandboxRequest(sandbox), hex(`0a18 ${SANDBOX_CONFIG}`));
  });

  it('CreateContainerRequest: pod_sandbox_id(1), config(2), sandbox_config(3)', () => {
    const req = encodeCreateContainerRequest('p', { name: 'c', image: 'i', command: ['sh'], args: ['x'], labels: { a: 'b' } }, sandbox);
    // ContainerConfig: metadata(1) {name "c"}, image(2) {image "i"}, command(3) "sh", args(4) "x", labels(9) {a: b}
    assert.deepEqual(req, hex(`0a0170   1219 0a03 0a0163  1203 0a0169  1a02 7368  2201 78  4a06 0a0161 120162   1a18 ${SANDBOX_CONFIG}`));
  });

  it('ExecSyncRequest: container_id(1), cmd(2) repeated, timeout(3) varint', () => {
    assert.deepEqual(encodeExecSyncRequest('c1', ['sh', '-c'], 10), hex('0a02 6331  1202 7368  1202 2d63  180a'));
  });

  it('StopContainerRequest: container_id(1), timeout(2)', () => {
    assert.deepEqual(encodeStopContainerRequest('c1', 2), hex('0a02 6331 1002'));
  });

  it('ListPodSandboxRequest: filter(1) {label_selector(3) map}', () => {
    assert.deepEqual(encodeListPodSandboxRequest({ a: 'b' }), hex('0a08 1a06 0a0161 120162'));
  });

  it('id requests and ImageStatusRequest: image(1) {image(1)}', () => {
    assert.deepEqual(encodeIdRequest('x'), hex('0a0178'));
    assert.deepEqual(encodeImageStatusRequest('i'), hex('0a03 0a0169'));
  });
});

describe('CRI pod responses from hand-written bytes', () => {
  it('RunPodSandbox / CreateContainer: the id in field 1', () => {
    assert.equal(decodeIdResponse(hex('0a0378797a')), 'xyz');
  });

  it('PodSandboxStatus: READY is state 0, absent on the wire; the address is network(5).ip(1)', () => {
    // status(1) {id(1) "x", network(5) {ip(1) "10.88.0.5"}}
    const ready = decodePodSandboxStatusResponse(hex('0a10 0a0178 2a0b 0a09 31302e38382e302e35'));
    assert.deepEqual(ready, { ready: true, ip: '10.88.0.5', additionalIps: [] });
    // status(1) {state(3) NOTREADY = 1}
    assert.deepEqual(decodePodSandboxStatusResponse(hex('0a02 1801')), { ready: false, ip: '', additionalIps: [] });
  });

  it('ContainerStatus: state(3), a negative exit_code(7) as a 10-byte varint, reason(10)', () => {
    const st = decodeContainerStatusResponse(hex('0a14 1802 38ffffffffffffffffff01 5205 4572726f72'));
    assert.deepEqual(st, { state: 'EXITED', exitCode: -1, reason: 'Error', message: '' });
    assert.equal(decodeContainerStatusResponse(hex('0a02 1801')).state, 'RUNNING');
  });

  it('ExecSync: stdout(1), stderr(2), exit_code(3)', () => {
    assert.deepEqual(decodeExecSyncResponse(hex('0a03 6f6b0a 1801')), { stdout: 'ok\n', stderr: '', exitCode: 1 });
  });

  it('ListPodSandbox: items(1) with id(1) and state(3)', () => {
    assert.deepEqual(decodeListPodSandboxResponse(hex('0a05 0a0161 1801  0a03 0a0162')), [
      { id: 'a', ready: false },
      { id: 'b', ready: true },
    ]);
  });

  it('ImageStatus: image(1).id(1), or no image at all', () => {
    assert.equal(decodeImageStatusResponse(hex('0a0a 0a08 7368613235363a78')), 'sha256:x');
    assert.equal(decodeImageStatusResponse(Buffer.alloc(0)), null);
  });
});
