import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cniGateway, cniNetwork, cniSubnetProblem, renderCniConflist, cniConflistPath, staleBridgeScript } from '../../src/modules/containerd/config/cni.js';
import { parseVersion } from '../../src/modules/containerd/version.js';
import type { SettingsIssue } from '../../src/tasks/types.js';
import { parseWith } from '../../src/util/schema.js';
import { containerdVariables } from '../../src/modules/containerd/settings.js';

function net(vars: Parameters<typeof cniNetwork>[0]) {
  const issues: SettingsIssue[] = [];
  const value = cniNetwork(vars, (i) => issues.push(i));
  return { value, issues };
}

describe('cni_conflist and cni_subnet', () => {
  it('is off unless "bridge" is asked for; the subnet defaults to 10.88.0.0/16', () => {
    assert.deepEqual(net({}), { value: null, issues: [] });
    assert.deepEqual(net({ cni_conflist: false }), { value: null, issues: [] });
    assert.deepEqual(net({ cni_conflist: '' }), { value: null, issues: [] });
    assert.deepEqual(net({ cni_conflist: 'bridge' }), { value: { kind: 'bridge', subnet: '10.88.0.0/16' }, issues: [] });
    assert.deepEqual(net({ cni_conflist: 'bridge', cni_subnet: '172.30.8.0/22' }).value, { kind: 'bridge', subnet: '172.30.8.0/22' });
  });

  it('refuses a subnet that is no IPv4 network, has host bits set, or has no room', () => {
    assert.match(cniSubnetProblem('10.88.0.0')!, /not an IPv4 network in CIDR form/);
    assert.match(cniSubnetProblem('10.300.0.0/16')!, /not an IPv4 network/);
    assert.match(cniSubnetProblem('fd00::/64')!, /not an IPv4 network/);
    assert.match(cniSubnetProblem('10.88.1.0/16')!, /host bits set; the network is 10\.88\.0\.0\/16/);
    assert.match(cniSubnetProblem('10.88.0.0/30')!, /outside \/8 to \/29/);
    assert.equal(cniSubnetProblem('10.88.0.0/16'), null);
    // Reported against the variable, even while cni_conflist is off (an inventory set it for a reason).
    assert.deepEqual(
      net({ cni_subnet: '10.88.1.0/16' }).issues.map((i) => i.path),
      [['cni_subnet']],
    );
  });

  it('renders bridge + host-local + loopback, the spec version the release reads', () => {
    const doc = JSON.parse(renderCniConflist({ kind: 'bridge', subnet: '10.99.0.0/16' }, parseVersion('2.1.9'))) as Record<string, unknown>;
    assert.deepEqual(doc, {
      cniVersion: '1.0.0',
      name: 'hoist-bridge',
      plugins: [
        {
          type: 'bridge',
          bridge: 'hoist0',
          isGateway: true,
          ipMasq: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.99.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'loopback' },
      ],
    });
    const old = JSON.parse(renderCniConflist({ kind: 'bridge', subnet: '10.99.0.0/16' }, parseVersion('1.5.18'))) as { cniVersion: string };
    assert.equal(old.cniVersion, '0.4.0');
    // Sorted before the 1.x bundle's 10-containerd-net.conflist: containerd takes the first file.
    assert.ok(cniConflistPath('/etc/cni/net.d') < '/etc/cni/net.d/10-containerd-net.conflist');
  });

  it("keeps hoist's bridge only while it holds this network's gateway", () => {
    const net = { kind: 'bridge' as const, subnet: '10.77.0.0/16' };
    assert.equal(cniGateway(net), '10.77.0.1/16');
    assert.match(staleBridgeScript(net), /grep -qF ' 10\.77\.0\.1\/16 '; then ip link delete hoist0; fi$/);
    assert.match(staleBridgeScript(null), /ip link show hoist0 >\/dev\/null 2>&1; then ip link delete hoist0; fi$/);
  });

  it('cni_conflist takes "bridge", "" or false, nothing else', () => {
    for (const ok of ['bridge', '', false]) assert.deepEqual(parseWith(containerdVariables.cni_conflist, ok).issues, [], String(ok));
    const bad = parseWith(containerdVariables.cni_conflist, 'calico').issues;
    assert.equal(bad.length, 1);
    assert.match(bad[0].message, /"bridge", "" or false/);
  });
});
