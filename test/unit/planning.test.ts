import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlanState } from '../../src/tasks/types.js';
import { planFile, parseFileProbe } from '../../src/tasks/lib/files.js';
import { sha256 } from '../../src/util/hash.js';
import { planService, parseServiceProbe, desiredStamp, type ServiceWant } from '../../src/tasks/lib/systemd.js';
import { installedPackages, installScript } from '../../src/tasks/lib/packages.js';
import type { ProbeResult } from '../../src/facts/probe.js';
import type { FileState } from '../../src/facts/reads.js';
import { Logger } from '../../src/util/log.js';
import { FakeHost } from '../support/fake-host.js';

const opts = { check: false, diff: true, offline: false };
const read = (file: FileState): ProbeResult => ({ out: '', code: 0, file });

test('a file read that failed is an error, never taken for a missing file', () => {
  assert.throws(() => parseFileProbe({ out: 'Connection reset', code: 255 }), /could not read the host's files: Connection reset/);
});

test('planFile: identical content and metadata → nothing to do', () => {
  const content = Buffer.from('hello\n');
  const have = parseFileProbe(read({ exists: true, sha256: sha256(content), mode: 0o644, owner: 'root', group: 'root' }));
  const st = new PlanState();
  assert.equal(planFile({ path: '/etc/x', content, mode: 0o644 }, have, st, opts), null);
  assert.equal(st.pending, false);
  assert.equal(st.files.get('/etc/x'), sha256(content));
});

test('planFile: changed content gives a diff; secrets are never shown', () => {
  const old = Buffer.from('a = 1\n');
  const have = parseFileProbe(read({ exists: true, sha256: sha256(old), mode: 0o644, owner: 'root', group: 'root', content: old }));
  const st = new PlanState();
  const a = planFile({ path: '/etc/x', content: Buffer.from('a = 2\n'), mode: 0o644 }, have, st, opts)!;
  assert.match(a.summary, /^update \/etc\/x/);
  assert.match(a.diff!, /-a = 1\n\+a = 2/);
  assert.ok(st.changedFiles.has('/etc/x'));
  const s = planFile({ path: '/etc/y', content: Buffer.from('password = "hunter22"\n'), mode: 0o600, secret: true }, { exists: false }, st, opts)!;
  assert.doesNotMatch(s.diff!, /hunter22/);
  assert.match(s.summary, /^create \/etc\/y/);
});

test('planFile: mode drift alone is fixed without rewriting', () => {
  const content = Buffer.from('x');
  const have = parseFileProbe(read({ exists: true, sha256: sha256(content), mode: 0o666, owner: 'root', group: 'root' }));
  const a = planFile({ path: '/etc/x', content, mode: 0o600 }, have, new PlanState(), opts)!;
  assert.match(a.summary, /fix mode\/owner of \/etc\/x \(mode 0666 → 0600\)/);
});

const svc: ServiceWant = {
  unit: 'containerd.service',
  enabled: true,
  state: 'started',
  restartOn: ['/etc/c.toml'],
  unitFiles: ['/etc/systemd/system/containerd.service'],
};
/** The service's probes as the round trip answers them: systemctl's lines, and /etc/c.toml with this hash. */
const answers =
  (svcOut: string, hash = 'a'.repeat(64)) =>
  (id: string): ProbeResult =>
    id === 'svc' ? { out: svcOut, code: 0 } : id === 'svc@0' ? read({ exists: true, sha256: hash, mtime: 1 }) : { out: '', code: 255 };
const probe = (extra: string) => answers(`UnitFileState=enabled\nActiveState=active\nLoadState=loaded\nNeedDaemonReload=no\n${extra}`);

test('service: restart decided from the stamp, not from this run', () => {
  const st = new PlanState();
  const have = parseServiceProbe(probe('stamp='), svc);
  const stamp = desiredStamp(svc, have, st);
  // Stamp matches: nothing, even though nothing else is known.
  assert.deepEqual(planService(svc, parseServiceProbe(probe(`stamp=${stamp}`), svc), new PlanState()), []);
  // A previous run changed the file but died before restarting: the stamp differs → restart.
  const stale = planService(svc, parseServiceProbe(probe(`stamp=${'0'.repeat(64)}`), svc), new PlanState());
  assert.deepEqual(
    stale.map((a) => a.summary),
    ['restart containerd.service (its files changed since it started)'],
  );
  // This run will change the file: restart, and a unit change adds a daemon-reload.
  const st2 = new PlanState();
  st2.files.set('/etc/c.toml', 'b'.repeat(64));
  st2.changedFiles.add('/etc/systemd/system/containerd.service');
  const acts = planService(svc, parseServiceProbe(probe(`stamp=${stamp}`), svc), st2);
  assert.deepEqual(
    acts.map((a) => a.summary),
    ['systemctl daemon-reload', 'restart containerd.service (its files changed since it started)'],
  );
});

test('service: stopped and disabled units are started and enabled', () => {
  const have = parseServiceProbe(answers('UnitFileState=disabled\nActiveState=inactive\nLoadState=loaded\nNeedDaemonReload=no\nstamp='), svc);
  assert.deepEqual(
    planService(svc, have, new PlanState()).map((a) => a.summary),
    ['enable containerd.service', 'start containerd.service'],
  );
});

test('service: a changed unit file is reloaded once: by enable where the unit is being enabled, else by daemon-reload', () => {
  const changed = () => {
    const st = new PlanState();
    st.changedFiles.add('/etc/systemd/system/containerd.service');
    return st;
  };
  const disabled = parseServiceProbe(answers('UnitFileState=disabled\nActiveState=inactive\nLoadState=loaded\nNeedDaemonReload=yes\nstamp='), svc);
  assert.deepEqual(
    planService(svc, disabled, changed()).map((a) => a.summary),
    ['enable containerd.service', 'start containerd.service'],
  );
  const enabled = parseServiceProbe(answers('UnitFileState=enabled\nActiveState=inactive\nLoadState=loaded\nNeedDaemonReload=no\nstamp='), svc);
  assert.deepEqual(
    planService(svc, enabled, changed()).map((a) => a.summary),
    ['systemctl daemon-reload', 'start containerd.service'],
  );
});

test('service: a failed unit is reset before it is started; one still starting is waited for, not counted as a change', async () => {
  const stamp = desiredStamp(svc, parseServiceProbe(probe('stamp='), svc), new PlanState());
  const state = (active: string) =>
    parseServiceProbe(answers(`UnitFileState=enabled\nActiveState=${active}\nLoadState=loaded\nNeedDaemonReload=no\nstamp=${stamp}`), svc);
  const failed = planService(svc, state('failed'), new PlanState());
  assert.deepEqual(
    failed.map((a) => [a.kind, a.summary]),
    [['change', 'start containerd.service']],
  );
  const host = new FakeHost();
  await failed[0].run(host, { options: opts, log: new Logger(), state: new PlanState(), note: () => undefined });
  assert.match(host.ran[0], /^systemctl reset-failed containerd\.service 2>\/dev\/null; systemctl start containerd\.service && /);
  const inactive = new FakeHost();
  await planService(svc, state('inactive'), new PlanState())[0].run(inactive, {
    options: opts,
    log: new Logger(),
    state: new PlanState(),
    note: () => undefined,
  });
  assert.match(inactive.ran[0], /^systemctl start containerd\.service && /);
  const starting = planService(svc, state('activating'), new PlanState());
  assert.deepEqual(
    starting.map((a) => [a.kind, a.summary]),
    [['check', 'wait for containerd.service to finish starting']],
  );
  const waiting = new FakeHost();
  await starting[0].run(waiting, { options: opts, log: new Logger(), state: new PlanState(), note: () => undefined });
  assert.deepEqual(waiting.ran, ['systemctl start containerd.service']);
  waiting.failing = /systemctl start/;
  await assert.rejects(
    starting[0].run(waiting, { options: opts, log: new Logger(), state: new PlanState(), note: () => undefined }),
    /containerd\.service did not finish starting/,
  );
});

test('package probe output and install commands per manager', () => {
  assert.deepEqual([...installedPackages({ out: '', code: 0, installed: new Set(['libseccomp2']) })], ['libseccomp2']);
  assert.throws(
    () => installedPackages({ out: 'no package database (neither dpkg nor rpm)', code: 3 }),
    /cannot read the package database: no package database/,
  );
  assert.match(installScript('apt', ['tree'], 'present'), /apt-get install -y -q --no-install-recommends tree/);
  assert.equal(installScript('dnf', ['libseccomp'], 'present'), 'dnf install -y libseccomp');
  assert.equal(installScript('yum', ['libseccomp'], 'absent'), 'yum remove -y libseccomp');
  assert.throws(() => installScript('none', ['x'], 'present'), /no supported package manager/);
});

test('a host whose init is not systemd is refused at planning, before any change', async () => {
  const { default: service } = await import('../../src/tasks/service.js');
  const { default: containerdService } = await import('../../src/modules/containerd/tasks/service.js');
  const { parseFacts } = await import('../../src/facts/facts.js');
  const facts = parseFacts('os_id=alpine\ninit=openrc-init\npm=none\n');
  const ctx = { facts, state: new PlanState(), probe: () => ({ out: '', code: 0 }), prepared: undefined } as unknown as Parameters<typeof service.plan>[1];
  assert.throws(() => service.plan({ name: 'x', enabled: true, state: 'started', restart_on: [], unit_files: [] }, ctx), /init is "openrc-init", not systemd/);
  assert.throws(
    () =>
      containerdService.plan({}, {
        ...ctx,
        prepared: { unit: '', want: { unit: 'containerd.service', enabled: true, state: 'started', restartOn: [], unitFiles: [] } },
      } as unknown as Parameters<typeof containerdService.plan>[1]),
    /not systemd/,
  );
});
