import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PLUGIN_ERROR_ALLOWLIST,
  evaluatePlugins,
  OutputParseError,
  parseConfigDump,
  parseCrictlInfo,
  parseCrictlVersion,
  parseCtrVersion,
  parsePluginList,
  requiredCriPlugins,
} from '../../src/modules/containerd/parse.js';

// ---------------------------------------------------------------- ctr version

test('ctr version: client and server blocks', () => {
  const out = [
    'Client:',
    '  Version:  v1.7.34',
    '  Revision: 0cc86c9d4a7d1a6c2dc6c8e85e3c2fd0d2e26c1b',
    '  Go version: go1.23.12',
    '',
    'Server:',
    '  Version:  v1.7.34',
    '  Revision: 0cc86c9d4a7d1a6c2dc6c8e85e3c2fd0d2e26c1b',
    '  UUID: 3e8fd1a4-6f3c-4b8e-9c62-2a4f0b1e7d55',
    '',
  ].join('\n');
  assert.deepEqual(parseCtrVersion(out), {
    client: { version: 'v1.7.34', revision: '0cc86c9d4a7d1a6c2dc6c8e85e3c2fd0d2e26c1b', goVersion: 'go1.23.12' },
    server: { version: 'v1.7.34', revision: '0cc86c9d4a7d1a6c2dc6c8e85e3c2fd0d2e26c1b', uuid: '3e8fd1a4-6f3c-4b8e-9c62-2a4f0b1e7d55' },
    errors: [],
  });
});

test('ctr version: daemon down, distro build without v prefix', () => {
  const out =
    'Client:\r\n  Version:  2.1.9+unknown\r\n  Revision: \r\n  Go version: go1.24.4\r\n\r\n' +
    'ctr: failed to dial "/run/containerd/containerd.sock": context deadline exceeded\r\n';
  const v = parseCtrVersion(out);
  assert.equal(v.client.version, '2.1.9+unknown');
  assert.equal(v.client.revision, null);
  assert.equal(v.server, null);
  assert.deepEqual(v.errors, ['ctr: failed to dial "/run/containerd/containerd.sock": context deadline exceeded']);
});

test('ctr version: mismatch warning kept, garbage rejected', () => {
  const out =
    'Client:\n  Version:  1.6.20~ds1\n  Revision: 1.6.20~ds1-2\n  Go version: go1.19.8\n\nServer:\n  Version:  v1.7.34\n  Revision: abc\n  UUID: u\nWARNING: version mismatch\n';
  const v = parseCtrVersion(out);
  assert.equal(v.client.version, '1.6.20~ds1');
  assert.equal(v.server?.version, 'v1.7.34');
  assert.deepEqual(v.errors, ['WARNING: version mismatch']);
  assert.throws(() => parseCtrVersion('bash: ctr: command not found\n'), OutputParseError);
});

// ---------------------------------------------------------------- ctr plugin ls

const PLUGINS_1_4 = `TYPE                            ID                       PLATFORMS      STATUS    
io.containerd.content.v1        content                  -              ok        
io.containerd.snapshotter.v1    aufs                     linux/amd64    error     
io.containerd.snapshotter.v1    btrfs                    linux/amd64    error     
io.containerd.snapshotter.v1    devmapper                linux/amd64    error     
io.containerd.snapshotter.v1    native                   linux/amd64    ok        
io.containerd.snapshotter.v1    overlayfs                linux/amd64    ok        
io.containerd.snapshotter.v1    zfs                      linux/amd64    error     
io.containerd.runtime.v1        linux                    linux/amd64    ok        
io.containerd.runtime.v2        task                     linux/amd64    ok        
io.containerd.grpc.v1           cri                      linux/amd64    ok        
`;

const PLUGINS_2_1 = `TYPE                                      ID                       PLATFORMS                   STATUS
io.containerd.content.v1                  content                  -                           ok
io.containerd.snapshotter.v1              blockfile                linux/amd64                 skip
io.containerd.snapshotter.v1              btrfs                    linux/amd64                 skip
io.containerd.snapshotter.v1              devmapper                linux/amd64                 skip
io.containerd.snapshotter.v1              erofs                    linux/amd64                 skip
io.containerd.snapshotter.v1              native                   linux/amd64                 ok
io.containerd.snapshotter.v1              overlayfs                linux/amd64                 ok
io.containerd.snapshotter.v1              zfs                      linux/amd64                 skip
io.containerd.tracing.processor.v1        otlp                     -                           skip
io.containerd.cri.v1                      images                   -                           ok
io.containerd.cri.v1                      runtime                  linux/amd64                 ok
io.containerd.podsandbox.controller.v1    podsandbox               -                           ok
io.containerd.sandbox.controller.v1       shim                     -                           ok
io.containerd.grpc.v1                     cri                      -                           ok
io.containerd.shim.v1                     manager                  linux/amd64,linux/arm64/v8  ok
`;

test('plugin ls: padded rows, platform lists, statuses', () => {
  const rows = parsePluginList(PLUGINS_1_4);
  assert.equal(rows.length, 10);
  assert.deepEqual(rows[0], { type: 'io.containerd.content.v1', id: 'content', platforms: [], status: 'ok' });
  assert.deepEqual(rows[1], { type: 'io.containerd.snapshotter.v1', id: 'aufs', platforms: ['linux/amd64'], status: 'error' });
  const rows2 = parsePluginList(PLUGINS_2_1);
  assert.deepEqual(rows2.at(-1)?.platforms, ['linux/amd64', 'linux/arm64/v8']);
  assert.equal(rows2.filter((r) => r.status === 'skip').length, 6);
});

test('plugin ls: malformed output is rejected', () => {
  assert.throws(() => parsePluginList('ctr: failed to dial "/run/containerd/containerd.sock"\n'), /no "TYPE ID PLATFORMS STATUS" header/);
  assert.throws(() => parsePluginList('TYPE ID PLATFORMS STATUS\nio.containerd.grpc.v1 cri - ok extra\n'), /line 2 has 5 columns/);
  assert.throws(() => parsePluginList('TYPE ID PLATFORMS STATUS\nio.containerd.grpc.v1 cri - broken\n'), /unknown status "broken"/);
});

test('evaluatePlugins: 1.4 host with the usual snapshotter errors is healthy', () => {
  const e = evaluatePlugins(parsePluginList(PLUGINS_1_4), { containerdVersion: '1.4.13' });
  assert.equal(e.healthy, true);
  assert.equal(e.criOk, true);
  assert.deepEqual(
    e.allowedErrors.map((r) => r.id),
    ['aufs', 'btrfs', 'devmapper', 'zfs'],
  );
  assert.deepEqual(e.unexpectedErrors, []);
});

test('evaluatePlugins: 2.x needs the split CRI plugins', () => {
  const rows = parsePluginList(PLUGINS_2_1);
  assert.equal(evaluatePlugins(rows, { containerdVersion: '2.1.9+unknown' }).healthy, true);
  assert.equal(evaluatePlugins(rows).healthy, true);
  const noRuntime = rows.filter((r) => !(r.type === 'io.containerd.cri.v1' && r.id === 'runtime'));
  const e = evaluatePlugins(noRuntime, { containerdVersion: 'v2.1.9' });
  assert.equal(e.criOk, false);
  assert.deepEqual(e.missing, ['io.containerd.cri.v1 runtime']);
  // The 1.x requirement alone would not notice.
  assert.equal(evaluatePlugins(noRuntime, { containerdVersion: '1.7.34' }).criOk, true);
  assert.deepEqual(requiredCriPlugins('2.0.0'), ['io.containerd.grpc.v1 cri', 'io.containerd.cri.v1 images', 'io.containerd.cri.v1 runtime']);
});

test('evaluatePlugins: CRI in error and errors outside the allow-list fail', () => {
  const text = PLUGINS_1_4.replace(/(io\.containerd\.grpc\.v1\s+cri\s+linux\/amd64\s+)ok/, '$1error').replace(/(overlayfs\s+linux\/amd64\s+)ok/, '$1error');
  const e = evaluatePlugins(parsePluginList(text), { containerdVersion: '1.4.13' });
  assert.equal(e.healthy, false);
  assert.equal(e.criOk, false);
  assert.deepEqual(
    e.criNotOk.map((r) => r.id),
    ['cri'],
  );
  assert.deepEqual(
    e.unexpectedErrors.map((r) => `${r.type} ${r.id}`),
    ['io.containerd.snapshotter.v1 overlayfs', 'io.containerd.grpc.v1 cri'],
  );
  // A disabled CRI plugin is simply absent.
  const disabled = evaluatePlugins(parsePluginList(PLUGINS_1_4.replace(/^io\.containerd\.grpc\.v1.*\n/m, '')));
  assert.deepEqual(disabled.missing, ['io.containerd.grpc.v1 cri']);
  assert.equal(disabled.healthy, false);
  // A custom allow-list replaces the default.
  const strict = evaluatePlugins(parsePluginList(PLUGINS_1_4), { allowErrors: [] });
  assert.equal(strict.healthy, false);
  assert.equal(strict.unexpectedErrors.length, 4);
  assert.ok(DEFAULT_PLUGIN_ERROR_ALLOWLIST.includes('io.containerd.snapshotter.v1 devmapper'));
});

// ---------------------------------------------------------------- crictl

test('crictl version', () => {
  const v = parseCrictlVersion('Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  v1.7.34\nRuntimeApiVersion:  v1\n');
  assert.deepEqual(v, { version: '0.1.0', runtimeName: 'containerd', runtimeVersion: 'v1.7.34', runtimeApiVersion: 'v1' });
  assert.equal(
    parseCrictlVersion('Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  1.4.13\nRuntimeApiVersion:  v1alpha2\n').runtimeApiVersion,
    'v1alpha2',
  );
  assert.throws(() => parseCrictlVersion('time="..." level=fatal msg="connect: connection refused"\n'), /RuntimeName/);
});

test('crictl info: conditions, leading warnings, config', () => {
  const doc = {
    status: {
      conditions: [
        { type: 'RuntimeReady', status: true, reason: '', message: '' },
        { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady', message: 'Network plugin returns error: cni plugin not initialized' },
        { type: 'ContainerdHasNoDeprecationWarnings', status: true, reason: '', message: '' },
      ],
    },
    config: { sandboxImage: 'registry.k8s.io/pause:3.8', registry: { configPath: '/etc/containerd/certs.d' } },
    golang: 'go1.23.12',
    lastCNILoadStatus: 'cni config load failed: no network config found in /etc/cni/net.d',
  };
  const out = 'WARN[0000] runtime connect using default endpoints: [unix:///run/containerd/containerd.sock]\n' + JSON.stringify(doc, null, 2) + '\n';
  const info = parseCrictlInfo(out);
  assert.equal(info.runtimeReady, true);
  assert.equal(info.networkReady, false);
  assert.equal(info.conditions[1].reason, 'NetworkPluginNotReady');
  assert.equal(info.config?.sandboxImage, 'registry.k8s.io/pause:3.8');
  assert.equal(info.raw.golang, 'go1.23.12');
  assert.equal(parseCrictlInfo(JSON.stringify({ status: { conditions: [] } })).runtimeReady, false);
  assert.throws(() => parseCrictlInfo('{"status": {}}'), /no status.conditions/);
  assert.throws(() => parseCrictlInfo('{"status": '), /invalid JSON/);
  assert.throws(() => parseCrictlInfo('connection refused'), /no JSON object/);
});

// ---------------------------------------------------------------- containerd config dump

// Shape of 1.7 `containerd config dump` (go-toml v1, version 2, every plugin table emitted).
const DUMP_1_7 = `disabled_plugins = []
imports = ["/etc/containerd/config.toml"]
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""

[grpc]
  address = "/run/containerd/containerd.sock"
  gid = 0
  max_recv_message_size = 16777216

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"
    systemd_cgroup = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          snapshotter = ""

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            SystemdCgroup = true

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"

      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]

  [plugins."io.containerd.snapshotter.v1.devmapper"]
    pool_name = ""
`;

// 2.1 default config (docs/cri/config.md at v2.1.9): no SystemdCgroup key at all.
const DUMP_2_1 = `version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
disabled_plugins = []

[grpc]
  address = '/run/containerd/containerd.sock'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    disable_snapshot_annotations = true

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'

    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ''

  [plugins.'io.containerd.cri.v1.runtime']
    enable_cdi = true

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'
          snapshotter = ''
          sandboxer = 'podsandbox'

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            BinaryName = ''
            NoNewKeyring = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dir = ''
      bin_dirs = ['/opt/cni/bin']
      conf_dir = '/etc/cni/net.d'

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
`;

// 2.3 (version 4): the socket moved into the io.containerd.server.v1.grpc plugin.
const DUMP_2_3 = `version = 4
root = '/data/containerd'
state = '/run/containerd'
disabled_plugins = ['io.containerd.snapshotter.v1.zfs']

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '/run/containerd/containerd.sock'
    max_recv_message_size = 16777216

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'native'

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10.1'

    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ''

  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'crun'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]
          runtime_type = 'io.containerd.runc.v2'
          snapshotter = 'overlayfs'

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
            BinaryName = '/usr/local/bin/crun'
            SystemdCgroup = true

        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            SystemdCgroup = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/opt/cni/bin', '/usr/lib/cni']
      conf_dir = '/etc/cni/net.d'
`;

test('config dump 1.7 (version 2)', () => {
  const c = parseConfigDump(DUMP_1_7);
  assert.deepEqual(c, {
    configVersion: 2,
    root: '/var/lib/containerd',
    state: '/run/containerd',
    grpcAddress: '/run/containerd/containerd.sock',
    defaultRuntime: 'runc',
    runtimeType: 'io.containerd.runc.v2',
    systemdCgroup: true,
    sandboxImage: 'registry.k8s.io/pause:3.8',
    registryConfigPath: '/etc/containerd/certs.d',
    registryConfigDirs: ['/etc/containerd/certs.d'],
    registryMirrors: false,
    snapshotter: 'overlayfs',
    cniBinDirs: ['/opt/cni/bin'],
    cniConfDir: '/etc/cni/net.d',
    disabledPlugins: [],
    criTables: ['io.containerd.grpc.v1.cri'],
  });
  const off = parseConfigDump(DUMP_1_7.replace('SystemdCgroup = true', 'SystemdCgroup = false'));
  assert.equal(off.systemdCgroup, false);
});

test('config dump 2.1 (version 3): missing SystemdCgroup means false; config_path default depends on release', () => {
  const c = parseConfigDump(DUMP_2_1);
  assert.equal(c.configVersion, 3);
  assert.equal(c.systemdCgroup, false);
  assert.equal(c.sandboxImage, 'registry.k8s.io/pause:3.10');
  assert.equal(c.snapshotter, 'overlayfs');
  assert.equal(c.registryConfigPath, '');
  assert.deepEqual(c.registryConfigDirs, []);
  assert.deepEqual(c.cniBinDirs, ['/opt/cni/bin']);
  assert.deepEqual(c.criTables, ['io.containerd.cri.v1.runtime', 'io.containerd.cri.v1.images']);
  assert.deepEqual(parseConfigDump(DUMP_2_1, { containerdVersion: '2.1.9+unknown' }).registryConfigDirs, []);
  assert.deepEqual(parseConfigDump(DUMP_2_1, { containerdVersion: 'v2.2.7' }).registryConfigDirs, ['/etc/containerd/certs.d', '/etc/docker/certs.d']);
  const sysd = parseConfigDump(DUMP_2_1.replace("BinaryName = ''", "BinaryName = ''\n            SystemdCgroup = true"));
  assert.equal(sysd.systemdCgroup, true);
});

test('config dump 2.3 (version 4): server plugin address, non-default runtime', () => {
  const c = parseConfigDump(DUMP_2_3);
  assert.equal(c.configVersion, 4);
  assert.equal(c.root, '/data/containerd');
  assert.equal(c.grpcAddress, '/run/containerd/containerd.sock');
  assert.equal(c.defaultRuntime, 'crun');
  assert.equal(c.systemdCgroup, true); // crun's options, not runc's
  assert.equal(c.snapshotter, 'overlayfs'); // runtime-level override of the global 'native'
  assert.equal(c.sandboxImage, 'registry.k8s.io/pause:3.10.1');
  assert.deepEqual(c.registryConfigDirs, ['/etc/containerd/certs.d', '/etc/docker/certs.d']);
  assert.deepEqual(c.cniBinDirs, ['/opt/cni/bin', '/usr/lib/cni']);
  assert.deepEqual(c.disabledPlugins, ['io.containerd.snapshotter.v1.zfs']);
  const custom = parseConfigDump(DUMP_2_3.replace("address = '/run/containerd/containerd.sock'", "address = '/run/k8s/containerd.sock'"));
  assert.equal(custom.grpcAddress, '/run/k8s/containerd.sock');
});

test('config dump: mirrors suppress the 2.2 default; version-1 short names; hand-written files', () => {
  const withMirrors = DUMP_2_1.replace(
    "config_path = ''",
    "config_path = ''\n      [plugins.'io.containerd.cri.v1.images'.registry.mirrors.'docker.io']\n        endpoint = ['https://mirror.example']",
  );
  const m = parseConfigDump(withMirrors, { containerdVersion: '2.2.7' });
  assert.equal(m.registryMirrors, true);
  assert.deepEqual(m.registryConfigDirs, []);

  const v1 = parseConfigDump(
    `root = "/var/lib/containerd"\n[plugins.cri]\n  sandbox_image = "k8s.gcr.io/pause:3.2"\n[plugins.cri.containerd]\n  snapshotter = "native"\n[plugins.cri.containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n[plugins.cri.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n`,
  );
  assert.equal(v1.configVersion, 1);
  assert.equal(v1.sandboxImage, 'k8s.gcr.io/pause:3.2');
  assert.equal(v1.snapshotter, 'native');
  assert.equal(v1.systemdCgroup, true);
  assert.deepEqual(v1.criTables, ['cri']);

  // The legacy runtime.v1.linux shim reads the plugin-wide flag.
  const legacyShim = parseConfigDump(
    `version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  systemd_cgroup = true\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runtime.v1.linux"\n`,
  );
  assert.equal(legacyShim.systemdCgroup, true);

  // Minimal file with only the 2.x table the docs show: the rest falls back to containerd defaults.
  const tiny = parseConfigDump(`version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n`);
  assert.equal(tiny.systemdCgroup, true);
  assert.equal(tiny.snapshotter, 'overlayfs');
  assert.equal(tiny.root, '/var/lib/containerd');
  assert.equal(tiny.grpcAddress, '/run/containerd/containerd.sock');
  assert.equal(tiny.sandboxImage, null);

  assert.throws(() => parseConfigDump('version = 2\n[plugins\n'), OutputParseError);
});
