import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  classify,
  ControllerError,
  EXIT,
  HoistError,
  HostError,
  InputError,
  InputErrors,
  InternalError,
  InterruptedError,
  LockHeldError,
  type ErrorKind,
} from '../../src/util/errors.js';
import { errorEnvelope } from '../../src/output/json.js';
import { assertOutputSchema } from '../support/output-schema.js';
import { EXIT as REPORT_EXIT } from '../../src/runner/report.js';
import { resolveSecretRef } from '../../src/util/secret-ref.js';
import { findChecksum } from '../../src/util/checksum.js';
import { loadInventory } from '../../src/inventory/inventory.js';
import { parseJumpSpec } from '../../src/ssh/ssh-config.js';
import { HostKeyError } from '../../src/ssh/transport.js';
import { BecomeError } from '../../src/ssh/become.js';
import { PeerCopyError } from '../../src/ssh/peer-copy.js';
import { packageFor } from '../../src/facts/os.js';
import { TaskCatalog } from '../../src/tasks/catalog.js';
import { slot } from '../../src/tasks/slot.js';
import ping from '../../src/tasks/ping.js';
import { RestartGate } from '../../src/runner/restart-gate.js';
import { parseDrainRecord } from '../../src/runner/drain-journal.js';
import { ensureArtifact } from '../../src/artifacts/download.js';
import { parseVersion } from '../../src/modules/containerd/version.js';
import { parseCtrVersion } from '../../src/modules/containerd/parse.js';
import { decodeFields } from '../../src/modules/containerd/cri/protobuf.js';
import { renderCrictlYaml } from '../../src/modules/containerd/render.js';

/** The error `fn` throws (or its promise rejects with). */
async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error');
}

describe('error kinds', () => {
  const cases: [string, unknown, ErrorKind, number][] = [
    ['InputError', new InputError('bad flag'), 'input', 1],
    ['InputErrors', new InputErrors([new InputError('a'), new InputError('b')]), 'input', 1],
    ['HostError', new HostError('h1: apt failed'), 'host', 2],
    ['LockHeldError', new LockHeldError('h1 is locked', 'deploy@ci'), 'host', 5],
    ['HostKeyError', new HostKeyError('h1: host key changed'), 'host', 6],
    ['ControllerError', new ControllerError('download failed'), 'controller', 3],
    ['InternalError', new InternalError('slot read before it was put'), 'internal', 1],
    ['InterruptedError SIGINT', new InterruptedError('SIGINT', 'while preparing'), 'interrupted', 130],
    ['InterruptedError SIGTERM', new InterruptedError('SIGTERM', 'while preparing'), 'interrupted', 143],
    ['a plain Error', new Error('boom'), 'internal', 1],
    ['a TypeError', new TypeError('x is undefined'), 'internal', 1],
    ['a thrown string', 'boom', 'internal', 1],
  ];
  for (const [name, err, kind, code] of cases) {
    it(`${name} is ${kind}, exit ${code}, and its --json envelope matches the schema`, () => {
      assert.deepEqual(classify(err), { kind, exitCode: code });
      const env = errorEnvelope('apply', code, kind, 'message');
      assertOutputSchema(env, name);
      assert.equal(env.error?.kind, kind);
    });
  }

  it('the codes are the documented run exit codes, one table for both', () => {
    assert.equal(REPORT_EXIT, EXIT);
    assert.deepEqual(EXIT, { ok: 0, input: 1, internal: 1, hostFailed: 2, controller: 3, unreachable: 4, locked: 5, hostKey: 6, sigint: 130, sigterm: 143 });
  });

  it("the schema refuses an error kind hoist does not have, and a kind with another kind's exit code", () => {
    assert.throws(() => assertOutputSchema(errorEnvelope('apply', 1, 'bogus' as ErrorKind, 'm'), 'bogus'), /does not match/);
    assert.throws(() => assertOutputSchema(errorEnvelope('apply', 1, 'controller', 'm'), 'controller 1'), /exitCode/);
    assert.throws(() => assertOutputSchema(errorEnvelope('apply', 3, 'host', 'm'), 'host 3'), /exitCode/);
    assert.throws(() => assertOutputSchema(errorEnvelope('apply', 2, 'internal', 'm'), 'internal 2'), /exitCode/);
  });

  it('an error names its class, and a subclass keeps its kind', () => {
    const e = new LockHeldError('h1 is locked');
    assert.ok(e instanceof HostError && e instanceof HoistError && e instanceof Error);
    assert.equal(e.name, 'LockHeldError');
    assert.equal(new ControllerError('x').name, 'ControllerError');
  });
});

describe('errors from each part of hoist classify by what failed', () => {
  const is = (e: unknown, kind: ErrorKind, code: number, cls: new (...a: never[]) => HoistError) => {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${String(e)}`);
    assert.deepEqual(classify(e), { kind, exitCode: code });
  };

  it('util: an unset secret reference is input; a checksum file without the asset is the controller', async () => {
    delete process.env.HOIST_TEST_UNSET_SECRET;
    is(await caught(() => resolveSecretRef({ env: 'HOIST_TEST_UNSET_SECRET' })), 'input', 1, InputError);
    is(await caught(() => findChecksum('0'.repeat(64) + '  other.tar.gz\n', 'containerd.tar.gz')), 'controller', 3, ControllerError);
  });

  it('inventory: a missing inventory file is input', async () => {
    is(await caught(() => loadInventory(path.join(os.tmpdir(), 'hoist-no-such-inventory.toml'))), 'input', 1, InputError);
  });

  it('ssh: a bad jump host is input; host key, become and peer copy failures are the host', async () => {
    is(await caught(() => parseJumpSpec('a@b@c:x')), 'input', 1, InputError);
    is(new HostKeyError('h1: unknown host key'), 'host', 6, HostError);
    is(new BecomeError('h1: sudo wants a password'), 'host', 2, HostError);
    is(new PeerCopyError('h2 could not fetch', 'route'), 'host', 2, HostError);
  });

  it('facts: a distribution hoist knows no package for is the host', async () => {
    is(await caught(() => packageFor({ family: 'unknown', packageManager: 'none' } as Parameters<typeof packageFor>[0], 'libseccomp')), 'host', 2, HostError);
  });

  it('tasks: a plan that finds the host wrong is the host; two tasks of one name and an unfilled slot are internal', async () => {
    const ctx = { probe: () => ({ out: 'nope', code: 0 }) } as unknown as Parameters<typeof ping.plan>[1];
    is(await caught(() => ping.plan({}, ctx)), 'host', 2, HostError);
    is(await caught(() => new TaskCatalog([ping, ping])), 'internal', 1, InternalError);
    is(await caught(() => slot<string>('staged', 'the staged files').get({})), 'internal', 1, InternalError);
  });

  it('runner: a stopped roll-out and an unreadable drain record are the host', async () => {
    const gate = new RestartGate(1);
    gate.stop('roll-out stopped: every host of the batch failed');
    is(await caught(() => gate.enter()), 'host', 2, HostError);
    is(await caught(() => parseDrainRecord('{', '/var/lib/hoist/drain')), 'host', 2, HostError);
  });

  it('artifacts: a download that cannot connect, and an offline miss, are the controller', async () => {
    const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hoist-errors-'));
    try {
      const artifact = {
        id: 'runc',
        name: 'runc.amd64',
        version: '1.0.0',
        url: 'http://127.0.0.1:9/runc.amd64',
        checksumUrl: 'http://127.0.0.1:9/runc.amd64.sha256sum',
        checksumFormat: 'sha256sum' as const,
        pinnedSha256: 'a'.repeat(64),
      };
      const opts = { cacheDir, retryDelayMs: 1, maxRetryDelayMs: 2, timeoutMs: 2000 };
      is(await caught(() => ensureArtifact(artifact, opts)), 'controller', 3, ControllerError);
      is(await caught(() => ensureArtifact(artifact, { ...opts, offline: true })), 'controller', 3, ControllerError);
    } finally {
      await fs.rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('containerd module: a bad version is input, unreadable host output is the host, an impossible render is internal', async () => {
    is(await caught(() => parseVersion('two.one')), 'input', 1, InputError);
    is(await caught(() => parseCtrVersion('Server:\n  Version: 2.1.4\n')), 'host', 2, HostError);
    is(await caught(() => decodeFields(Buffer.from([0x80]))), 'host', 2, HostError);
    is(await caught(() => renderCrictlYaml({ endpoint: 'http://nowhere', timeout: 10, debug: false })), 'internal', 1, InternalError);
  });
});
