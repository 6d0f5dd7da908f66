// Wire layout of the pod sandbox calls, checked field by field against cri-api's runtime.v1 api.proto.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtoMessage, ProtoWriter } from '../../src/modules/containerd/cri/protobuf.js';
import {
  decodeIdResponse as decodeRunPodSandboxResponse,
  encodeIdRequest as encodePodSandboxIdRequest,
  encodeRunPodSandboxRequest,
} from '../../src/modules/containerd/cri/pod.js';

describe('RunPodSandboxRequest', () => {
  it('carries metadata, labels, cgroup parent and a node network namespace', () => {
    const buf = encodeRunPodSandboxRequest(
      { name: 'n', uid: 'u', namespace: 'ns', attempt: 2, cgroupParent: 'hoist.slice', hostNetwork: true, labels: { a: 'b' } },
      'runc',
    );
    const req = new ProtoMessage(buf);
    assert.equal(req.string(2), 'runc');
    const config = req.message(1)!;
    const meta = config.message(1)!;
    assert.deepEqual([meta.string(1), meta.string(2), meta.string(3), meta.uint64(4)], ['n', 'u', 'ns', 2n]);
    assert.deepEqual(config.stringMap(6), { a: 'b' });
    const linux = config.message(8)!;
    assert.equal(linux.string(1), 'hoist.slice');
    // security_context(2).namespace_options(1).network(1) = NODE(2)
    assert.equal(linux.message(2)!.message(1)!.uint64(1), 2n);
  });

  it('leaves the pod network namespace (POD = 0, the proto3 default) when not host network', () => {
    const config = new ProtoMessage(encodeRunPodSandboxRequest({ name: 'n', uid: 'u', namespace: 'ns', cgroupParent: '' })).message(1)!;
    assert.equal(config.message(8)!.message(2), null);
    assert.equal(new ProtoMessage(encodeRunPodSandboxRequest({ name: 'n', uid: 'u', namespace: 'ns', cgroupParent: '' })).string(2), '');
  });

  it('stop/remove take the id; the response is the id', () => {
    assert.equal(new ProtoMessage(encodePodSandboxIdRequest('abc')).string(1), 'abc');
    assert.equal(decodeRunPodSandboxResponse(new ProtoWriter().string(1, 'id-1').finish()), 'id-1');
  });
});
