import { FanOut } from '../../src/runner/fan-out.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { releaseCatalog } from '../../src/modules/containerd/catalog.js';
import { containerdSettings } from '../../src/modules/containerd/settings.js';
import artifactsTask from '../../src/modules/containerd/tasks/artifacts.js';
import { parseFacts } from '../../src/facts/facts.js';
import { PlanState } from '../../src/tasks/types.js';
import type { StagedArtifact } from '../../src/modules/containerd/slots.js';
import { Logger } from '../../src/util/log.js';

describe('release files per architecture', () => {
  it('arm64 picks the arm64 file of every component of a 2.x install', () => {
    const list = releaseCatalog({ containerdVersion: '2.1.4', arch: 'arm64' });
    assert.deepEqual(
      list.map((a) => a.name),
      ['containerd-2.1.4-linux-arm64.tar.gz', 'runc.arm64', 'cni-plugins-linux-arm64-v1.9.0.tgz', 'crictl-v1.30.1-linux-arm64.tar.gz'],
    );
    assert.equal(list[1].url, 'https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.arm64');
    // runc publishes one checksum file for every architecture.
    assert.equal(list[1].checksumUrl, 'https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.sha256sum');
    assert.ok(list.every((a) => !a.url.includes('amd64')));
  });

  it('arm64 takes the 1.x bundle from 1.6 on and refuses older lines', () => {
    assert.equal(releaseCatalog({ containerdVersion: '1.7.24', arch: 'arm64' })[0].name, 'cri-containerd-cni-1.7.24-linux-arm64.tar.gz');
    assert.throws(() => releaseCatalog({ containerdVersion: '1.5.18', arch: 'arm64' }), /no arm64 cri-containerd-cni bundle/);
  });

  it('amd64 stays the default', () => {
    assert.equal(releaseCatalog({ containerdVersion: '1.7.24' })[0].name, 'cri-containerd-cni-1.7.24-linux-amd64.tar.gz');
  });
});

describe('a host of another architecture is refused at plan time', () => {
  const plan = (hostArch: string, releaseArch?: 'amd64' | 'arm64') => {
    const settings = containerdSettings({ containerd_version: '2.1.4', ...(releaseArch ? { release_arch: releaseArch } : {}) }, (i) => assert.fail(i.message));
    assert.ok(settings);
    const staged: StagedArtifact[] = settings.artifacts.map((a) => ({
      artifact: a,
      sha256: 'a'.repeat(64),
      size: 1,
      remotePath: `/var/lib/hoist/artifacts/x-${a.name}`,
      url: a.url,
    }));
    const state = new PlanState();
    const facts = parseFacts(`arch=${hostArch}\ninit=systemd\npm=apt\ndf_/var/lib/hoist=100000000`);
    const host = { name: 'h', address: 'h', become: false, becomeUser: 'root', groups: [], vars: {}, varLayers: [] };
    const controller = { playbookDir: '.', inventoryDir: '.', log: new Logger(), progress: () => undefined, deliver: new FanOut(new Logger()).deliver };
    return artifactsTask.plan(
      {},
      {
        host,
        vars: {},
        settings,
        facts,
        state,
        prepared: staged,
        live: undefined,
        controller,
        options: { check: true, diff: false, offline: false },
        probe: () => ({ out: staged.map((s) => s.remotePath).join('\n'), code: 0 }),
      },
    );
  };

  it('aarch64 with amd64 files names the setting that fixes it', () => {
    assert.throws(() => plan('aarch64'), /this host is aarch64 \(arm64\) but the release files are for amd64; set release_arch = "arm64"/);
  });

  it('aarch64 with release_arch = "arm64" plans normally', async () => {
    assert.deepEqual((await plan('aarch64', 'arm64')).actions, []);
  });

  it('an architecture upstream does not publish is refused outright', () => {
    assert.throws(() => plan('s390x'), /publishes containerd for amd64 and arm64 only/);
  });
});
