import { test } from 'node:test';
import assert from 'node:assert/strict';

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { osProfile, packageFor, packageCandidates, relabelCommand, osFamily } from '../../src/facts/os.js';
import { parseFacts, type Facts } from '../../src/facts/facts.js';
import { installScript } from '../../src/modules/containerd/tasks/install.js';
import libseccomp from '../../src/modules/containerd/tasks/libseccomp.js';
import nodePackages from '../../src/modules/kubernetes-node/tasks/packages.js';
import { PlanState, type AnyTask } from '../../src/tasks/types.js';
import { Logger } from '../../src/util/log.js';

/** The facts a host with this os-release file reports: the real facts script reads it with bash. */
function factsOf(fixture: string, pm: 'apt' | 'dnf' | 'yum'): Facts {
  const file = path.join(import.meta.dirname, 'fixtures', 'os-release', fixture);
  const out = execFileSync(
    'bash',
    ['-c', `. "$1"; echo "os_id=\${ID:-unknown}"; echo "os_id_like=\${ID_LIKE:-}"; echo "os_version=\${VERSION_ID:-}"`, 'os', file],
    { encoding: 'utf8' },
  );
  return parseFacts(`${out}pm=${pm}\ninit=systemd`);
}

const needs = ['libseccomp', 'ip', 'iptables', 'nsenter', 'conntrack', 'ebtables'] as const;
const names = (f: Facts) => needs.map((n) => packageFor(osProfile(f), n));

test('the OS layer names packages per family and version (RHEL family from os-release fixtures)', () => {
  assert.deepEqual(names(factsOf('debian-12', 'apt')), ['libseccomp2', 'iproute2', 'iptables', 'util-linux', 'conntrack', 'ebtables']);
  assert.deepEqual(names(factsOf('ubuntu-24.04', 'apt')), ['libseccomp2', 'iproute2', 'iptables', 'util-linux', 'conntrack', 'ebtables']);
  assert.deepEqual(names(factsOf('rhel-9', 'dnf')), ['libseccomp', 'iproute', 'iptables-nft', 'util-linux', 'conntrack-tools', 'iptables-nft']);
  assert.deepEqual(names(factsOf('alma-9', 'dnf')), ['libseccomp', 'iproute', 'iptables-nft', 'util-linux', 'conntrack-tools', 'iptables-nft']);
  assert.deepEqual(names(factsOf('rocky-8', 'dnf')), ['libseccomp', 'iproute', 'iptables', 'util-linux', 'conntrack-tools', 'ebtables']);
  assert.deepEqual(names(factsOf('fedora-40', 'dnf')), ['libseccomp', 'iproute', 'iptables-nft', 'util-linux', 'conntrack-tools', 'iptables-nft']);
  assert.deepEqual(
    ['rhel-9', 'rocky-8', 'fedora-40', 'debian-12', 'ubuntu-24.04'].map((f) => osFamily(factsOf(f, 'dnf'))),
    ['rhel', 'rhel', 'rhel', 'debian', 'debian'],
  );
  assert.equal(osProfile(factsOf('rocky-8', 'dnf')).major, 8);
  const unknown = parseFacts('os_id=arch\npm=none');
  assert.throws(() => packageFor(osProfile(unknown), 'ip'), /does not know this distribution's package for ip/);
  assert.ok(packageCandidates(['iptables']).includes('iptables-nft') && packageCandidates(['iptables']).includes('iptables'));
});

test('RHEL family: installed binaries are relabelled for SELinux; Debian family gets no restorecon', () => {
  const rhel = relabelCommand(osProfile(factsOf('rhel-9', 'dnf')), '"${installed[@]}"');
  assert.equal(
    rhel,
    'if command -v selinuxenabled >/dev/null && selinuxenabled && command -v restorecon >/dev/null; then restorecon -F -- "${installed[@]}"; fi',
  );
  assert.equal(relabelCommand(osProfile(factsOf('debian-12', 'apt')), '"${installed[@]}"'), '');
  const script = installScript([], { version: '1.7.24', artifacts: [] } as unknown as Parameters<typeof installScript>[1], { relabel: rhel });
  assert.match(script, /stat -c '%s %Y %n'[^\n]*\nif \[ \$\{#installed\[@\]\} -gt 0 \]; then if command -v selinuxenabled/);
  assert.doesNotMatch(installScript([], { version: '1.7.24', artifacts: [] } as unknown as Parameters<typeof installScript>[1]), /restorecon/);
});

test("libseccomp and the node's packages plan with the family's names", async () => {
  const ctx = (facts: Facts, installed: string[], settings: unknown) => ({
    host: { name: 'h', address: 'h', become: false, becomeUser: 'root', groups: [], vars: {}, varLayers: [] },
    vars: {},
    settings,
    options: { check: true, diff: false, offline: true },
    controller: { playbookDir: '.', inventoryDir: '.', log: new Logger(), progress: () => undefined, deliver: async () => '' },
    facts,
    prepared: undefined,
    state: new PlanState(),
    live: undefined,
    probe: () => ({ out: '', code: 0, installed: new Set(installed) }),
  });
  const rocky = factsOf('rocky-8', 'dnf');
  const seccomp = await (libseccomp as AnyTask).plan({}, ctx(rocky, [], undefined));
  assert.deepEqual(
    seccomp.actions.map((a) => a.summary),
    ['install libseccomp (dnf)'],
  );
  const st = { modules: [], sysctls: {}, ports: [10250], commands: ['ip', 'iptables', 'mount', 'nsenter'] };
  const rhel = await (nodePackages as AnyTask).plan({}, ctx(factsOf('rhel-9', 'dnf'), ['util-linux'], st));
  assert.deepEqual(
    rhel.actions.map((a) => a.summary),
    ['install iproute, iptables-nft (dnf)'],
  );
  const debian = await (nodePackages as AnyTask).plan({}, ctx(factsOf('debian-12', 'apt'), ['iproute2', 'iptables', 'mount', 'util-linux'], st));
  assert.deepEqual(debian.actions, []);
  const named = await (nodePackages as AnyTask).plan({}, ctx(factsOf('debian-12', 'apt'), [], { ...st, packages: ['socat'] }));
  assert.deepEqual(
    named.actions.map((a) => a.summary),
    ['install socat (apt)'],
  );
});
