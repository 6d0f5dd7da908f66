import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { parse } from 'smol-toml';
import {
  hostsDirName,
  hostsTomlPath,
  renderAllHostsToml,
  renderConfig,
  renderCrictlYaml,
  renderHostsToml,
  renderUnit,
  tomlString,
  tomlValue,
} from '../../src/modules/containerd/render.js';
import { defaultSandboxImage } from '../../src/modules/containerd/config/features.js';
import { registryFilePath, registryFiles } from '../../src/modules/containerd/config/registry-paths.js';
import { validateRuntimeConfig } from '../../src/modules/containerd/config/validate.js';
import { type RuntimeConfig } from '../../src/modules/containerd/config/types.js';
import { parseVersion } from '../../src/modules/containerd/version.js';

type Table = Record<string, unknown>;

function cfgFor(vars: Table): RuntimeConfig {
  return validateRuntimeConfig(vars);
}

/** Parsed TOML as plain objects (smol-toml builds null-prototype tables), so deepEqual compares content. */
function tomlOf(text: string): Table {
  return JSON.parse(JSON.stringify(parse(text))) as Table;
}

function get(t: unknown, ...keys: string[]): unknown {
  let v = t;
  for (const k of keys) {
    assert.ok(v !== null && typeof v === 'object' && k in (v as Table), `missing key ${keys.join(' → ')} (at ${k})`);
    v = (v as Table)[k];
  }
  return v;
}

function validationError(vars: Table): string {
  try {
    validateRuntimeConfig(vars);
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('validation unexpectedly succeeded');
}

const TOP = { root: '/var/lib/containerd', state: '/run/containerd', oom_score: 0, imports: ['/etc/containerd/conf.d/*.toml'] };
const RUNC = { runtime_type: 'io.containerd.runc.v2', options: { SystemdCgroup: true } };

describe('renderConfig: exact document per config version', () => {
  it('1.4 writes version 2 with no config_path (the CRI plugin of 1.4 has none)', () => {
    const doc = tomlOf(renderConfig(cfgFor({ containerd_version: '1.4.13' })).text);
    assert.deepEqual(doc, {
      version: 2,
      ...TOP,
      plugins: {
        'io.containerd.grpc.v1.cri': {
          sandbox_image: 'registry.k8s.io/pause:3.2',
          cni: { bin_dir: '/opt/cni/bin', conf_dir: '/etc/cni/net.d' },
          containerd: { snapshotter: 'overlayfs', runtimes: { runc: RUNC } },
        },
      },
    });
  });

  for (const [ver, pause] of [
    ['1.5.18', '3.5'],
    ['1.6.39', '3.6'],
    ['1.7.34', '3.8'],
  ] as const) {
    it(`${ver} writes version 2 with registry.config_path`, () => {
      const doc = tomlOf(renderConfig(cfgFor({ containerd_version: ver })).text);
      assert.deepEqual(doc, {
        version: 2,
        ...TOP,
        plugins: {
          'io.containerd.grpc.v1.cri': {
            sandbox_image: `registry.k8s.io/pause:${pause}`,
            cni: { bin_dir: '/opt/cni/bin', conf_dir: '/etc/cni/net.d' },
            containerd: { snapshotter: 'overlayfs', runtimes: { runc: RUNC } },
            registry: { config_path: '/etc/containerd/certs.d' },
          },
        },
      });
    });
  }

  for (const [ver, configVersion, pause, cni] of [
    ['2.0.11', 3, '3.10', { bin_dir: '/opt/cni/bin' }],
    ['2.1.9', 3, '3.10', { bin_dirs: ['/opt/cni/bin'] }],
    ['2.2.7', 3, '3.10.1', { bin_dirs: ['/opt/cni/bin'] }],
    ['2.3.4', 4, '3.10.2', { bin_dirs: ['/opt/cni/bin'] }],
  ] as const) {
    it(`${ver} writes version ${configVersion} with the split cri.v1 plugins`, () => {
      const r = renderConfig(cfgFor({ containerd_version: ver }));
      assert.equal(r.secret, false);
      assert.deepEqual(tomlOf(r.text), {
        version: configVersion,
        ...TOP,
        plugins: {
          'io.containerd.cri.v1.images': {
            snapshotter: 'overlayfs',
            pinned_images: { sandbox: `registry.k8s.io/pause:${pause}` },
            registry: { config_path: '/etc/containerd/certs.d' },
          },
          'io.containerd.cri.v1.runtime': {
            cni: { ...cni, conf_dir: '/etc/cni/net.d' },
            containerd: { runtimes: { runc: RUNC } },
          },
        },
      });
    });
  }

  it('carries every overridable setting to its key', () => {
    const vars = {
      systemd_cgroup: false,
      sandbox_image: 'reg.local/pause:9',
      root_dir: '/data/containerd/',
      state_dir: '/run/ctd',
      oom_score: -999,
      snapshotter: 'native',
      cni_bin_dir: '/usr/lib/cni',
      cni_conf_dir: '/etc/cni/conf',
      imports_dir: '/etc/ctd.d',
      config_path: '/etc/ctd/certs.d',
    };
    const v1 = tomlOf(renderConfig(cfgFor({ containerd_version: '1.7.34', ...vars })).text);
    assert.equal(v1.root, '/data/containerd');
    assert.equal(v1.state, '/run/ctd');
    assert.equal(v1.oom_score, -999);
    assert.deepEqual(v1.imports, ['/etc/ctd.d/*.toml']);
    const cri = get(v1, 'plugins', 'io.containerd.grpc.v1.cri');
    assert.equal(get(cri, 'sandbox_image'), 'reg.local/pause:9');
    assert.equal(get(cri, 'containerd', 'snapshotter'), 'native');
    assert.equal(get(cri, 'containerd', 'runtimes', 'runc', 'options', 'SystemdCgroup'), false);
    assert.deepEqual(get(cri, 'cni'), { bin_dir: '/usr/lib/cni', conf_dir: '/etc/cni/conf' });
    assert.equal(get(cri, 'registry', 'config_path'), '/etc/ctd/certs.d');

    const v4 = tomlOf(renderConfig(cfgFor({ containerd_version: '2.3.4', ...vars })).text);
    assert.equal(get(v4, 'plugins', 'io.containerd.cri.v1.images', 'pinned_images', 'sandbox'), 'reg.local/pause:9');
    assert.equal(get(v4, 'plugins', 'io.containerd.cri.v1.images', 'snapshotter'), 'native');
    assert.equal(get(v4, 'plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes', 'runc', 'options', 'SystemdCgroup'), false);
    assert.deepEqual(get(v4, 'plugins', 'io.containerd.cri.v1.runtime', 'cni', 'bin_dirs'), ['/usr/lib/cni']);
  });

  it('imports_dir = "" drops imports', () => {
    const doc = tomlOf(renderConfig(cfgFor({ containerd_version: '2.1.9', imports_dir: '' })).text);
    assert.equal('imports' in doc, false);
  });
});

describe('registries in config.toml', () => {
  const registries = {
    'docker.io': {
      mirrors: ['https://m3.example', { url: 'https://m1.example:8443', ca: '/ctl/certs/m1-ca.crt', skip_verify: true }, 'http://m2.example'],
    },
    'registry.example:5000': {
      ca: '/ctl/certs/reg-ca.pem',
      client_cert: '/ctl/certs/client.pem',
      client_key: '/ctl/certs/client-key.pem',
      username: 'robot',
      password: 's3cret-pw',
    },
  };

  it('1.4 uses registry.mirrors endpoints (mirror order kept, then the server) and registry.configs tls/auth', () => {
    const r = renderConfig(cfgFor({ containerd_version: '1.4.13', registries }));
    assert.equal(r.secret, true);
    const reg = get(tomlOf(r.text), 'plugins', 'io.containerd.grpc.v1.cri', 'registry') as Table;
    assert.equal('config_path' in reg, false);
    assert.deepEqual(reg.mirrors, {
      'docker.io': { endpoint: ['https://m3.example', 'https://m1.example:8443', 'http://m2.example', 'https://registry-1.docker.io'] },
    });
    assert.deepEqual(reg.configs, {
      'm1.example:8443': { tls: { ca_file: '/etc/containerd/certs.d/docker.io/m1-ca.crt', insecure_skip_verify: true } },
      'registry.example:5000': {
        tls: {
          ca_file: '/etc/containerd/certs.d/registry.example_5000_/reg-ca.pem',
          cert_file: '/etc/containerd/certs.d/registry.example_5000_/client.pem',
          key_file: '/etc/containerd/certs.d/registry.example_5000_/client-key.pem',
        },
        auth: { username: 'robot', password: 's3cret-pw' },
      },
    });
  });

  it('1.4 lists a non-default server as the only endpoint', () => {
    const r = renderConfig(
      cfgFor({
        containerd_version: '1.4.13',
        registries: { 'quay.io': { server: 'https://quay-proxy.internal' }, 'plain.local:5000': { insecure_http: true } },
      }),
    );
    const reg = get(tomlOf(r.text), 'plugins', 'io.containerd.grpc.v1.cri', 'registry') as Table;
    assert.deepEqual(reg.mirrors, {
      'plain.local:5000': { endpoint: ['http://plain.local:5000'] },
      'quay.io': { endpoint: ['https://quay-proxy.internal'] },
    });
    assert.equal(r.secret, false);
  });

  for (const ver of ['1.5.18', '1.6.39', '1.7.34']) {
    it(`${ver} keeps mirrors and TLS out of config.toml; credentials go to registry.configs.<server>.auth`, () => {
      const r = renderConfig(cfgFor({ containerd_version: ver, registries }));
      assert.equal(r.secret, true);
      const reg = get(tomlOf(r.text), 'plugins', 'io.containerd.grpc.v1.cri', 'registry') as Table;
      assert.deepEqual(reg, {
        config_path: '/etc/containerd/certs.d',
        configs: { 'registry.example:5000': { auth: { username: 'robot', password: 's3cret-pw' } } },
      });
    });
  }

  it('1.x keys docker.io credentials by the endpoint containerd authenticates against', () => {
    const r = renderConfig(cfgFor({ containerd_version: '1.7.34', registries: { 'docker.io': { auth: Buffer.from('u:p').toString('base64') } } }));
    assert.deepEqual(get(tomlOf(r.text), 'plugins', 'io.containerd.grpc.v1.cri', 'registry', 'configs'), {
      'registry-1.docker.io': { auth: { auth: 'dTpw' } },
    });
  });

  for (const ver of ['2.0.11', '2.2.7', '2.3.4']) {
    it(`${ver} config.toml holds no registry settings or secrets besides config_path`, () => {
      const r = renderConfig(cfgFor({ containerd_version: ver, registries }));
      assert.equal(r.secret, false);
      assert.doesNotMatch(r.text, /s3cret|robot|mirrors|configs/);
      assert.deepEqual(get(tomlOf(r.text), 'plugins', 'io.containerd.cri.v1.images', 'registry'), { config_path: '/etc/containerd/certs.d' });
    });
  }
});

describe('renderHostsToml', () => {
  const mirrors = [
    'https://zz.example',
    {
      url: 'https://aa.example:8443/v2/proxy',
      override_path: true,
      capabilities: ['resolve', 'pull', 'pull'],
      ca: '/ctl/aa.crt',
      client_cert: '/ctl/aa-c.pem',
      client_key: '/ctl/aa-k.pem',
      headers: { 'X-B': 'b', 'X-A': ['1', '2'] },
    },
    { url: 'http://mm.example', capabilities: ['pull'], skip_verify: true },
  ];

  it('keeps mirror order and writes each field where containerd reads it', () => {
    const cfg = cfgFor({ containerd_version: '2.1.9', registries: { 'docker.io': { mirrors } } });
    const r = renderHostsToml('docker.io', cfg.registries['docker.io'], cfg);
    assert.equal(r.secret, false);
    const doc = tomlOf(r.text);
    assert.equal(doc.server, 'https://registry-1.docker.io');
    assert.deepEqual(Object.keys(doc.host as Table), ['https://zz.example', 'https://aa.example:8443/v2/proxy', 'http://mm.example']);
    const i1 = r.text.indexOf('[host."https://zz.example"]');
    const i2 = r.text.indexOf('[host."https://aa.example:8443/v2/proxy"]');
    const i3 = r.text.indexOf('[host."http://mm.example"]');
    assert.ok(i1 > 0 && i1 < i2 && i2 < i3, 'host tables appear in mirror order');
    assert.deepEqual(doc.host, {
      'https://zz.example': { capabilities: ['pull', 'resolve'] },
      'https://aa.example:8443/v2/proxy': {
        capabilities: ['pull', 'resolve'],
        ca: '/etc/containerd/certs.d/docker.io/aa.crt',
        client: [['/etc/containerd/certs.d/docker.io/aa-c.pem', '/etc/containerd/certs.d/docker.io/aa-k.pem']],
        override_path: true,
        header: { 'X-A': ['1', '2'], 'X-B': 'b' },
      },
      'http://mm.example': { capabilities: ['pull'], skip_verify: true },
    });
  });

  it('puts registry TLS at the top level (server only) and, on 2.x, credentials as an Authorization header', () => {
    const vars = {
      registries: {
        'registry.example:5000': { mirrors: ['https://cache.example'], ca: '/ctl/ca.pem', skip_verify: true, username: 'robot', password: 'pa:ss' },
      },
    };
    const cfg2 = cfgFor({ containerd_version: '2.3.4', ...vars });
    const r2 = renderHostsToml('registry.example:5000', cfg2.registries['registry.example:5000'], cfg2);
    assert.equal(r2.secret, true);
    const doc2 = tomlOf(r2.text);
    assert.equal(doc2.server, 'https://registry.example:5000');
    assert.equal(doc2.ca, '/etc/containerd/certs.d/registry.example_5000_/ca.pem');
    assert.equal(doc2.skip_verify, true);
    assert.deepEqual(doc2.header, { Authorization: `Basic ${Buffer.from('robot:pa:ss').toString('base64')}` });
    // The mirror never receives the registry's credentials or TLS trust.
    assert.deepEqual(get(doc2, 'host', 'https://cache.example'), { capabilities: ['pull', 'resolve'] });

    const cfg1 = cfgFor({ containerd_version: '1.7.34', ...vars });
    const r1 = renderHostsToml('registry.example:5000', cfg1.registries['registry.example:5000'], cfg1);
    assert.equal(r1.secret, false);
    assert.equal('header' in tomlOf(r1.text), false);
    assert.doesNotMatch(r1.text, /robot|pa:ss/);
  });

  it('repeats the server as a [host] table where containerd would otherwise drop the file (<1.7.32)', () => {
    const vars = { registries: { 'reg.local': { ca: '/ctl/ca.crt' } } };
    for (const [ver, expectTable] of [
      ['1.5.18', true],
      ['1.6.39', true],
      ['1.7.31', true],
      ['1.7.32', false],
      ['2.0.0', false],
    ] as const) {
      const cfg = cfgFor({ containerd_version: ver, ...vars });
      const doc = tomlOf(renderHostsToml('reg.local', cfg.registries['reg.local'], cfg).text);
      assert.equal(doc.server, 'https://reg.local', ver);
      assert.equal(doc.ca, '/etc/containerd/certs.d/reg.local/ca.crt', ver);
      if (expectTable) {
        assert.deepEqual(doc.host, { 'https://reg.local': { capabilities: ['pull', 'resolve', 'push'], ca: '/etc/containerd/certs.d/reg.local/ca.crt' } }, ver);
      } else {
        assert.equal('host' in doc, false, ver);
      }
    }
  });

  it('insecure_http makes the server plain http', () => {
    const cfg = cfgFor({ containerd_version: '2.2.7', registries: { 'plain.local:5000': { insecure_http: true } } });
    assert.equal(tomlOf(renderHostsToml('plain.local:5000', cfg.registries['plain.local:5000'], cfg).text).server, 'http://plain.local:5000');
  });

  it('_default has no server and applies its mirrors to every registry', () => {
    const cfg = cfgFor({ containerd_version: '2.0.11', registries: { _default: { mirrors: ['https://any-cache.example'] } } });
    const doc = tomlOf(renderHostsToml('_default', cfg.registries._default, cfg).text);
    assert.equal('server' in doc, false);
    assert.deepEqual(doc.host, { 'https://any-cache.example': { capabilities: ['pull', 'resolve'] } });
  });

  it('is refused for 1.4, which has no hosts.toml', () => {
    const cfg = cfgFor({ containerd_version: '1.4.13', registries: { 'reg.local': {} } });
    assert.throws(() => renderHostsToml('reg.local', cfg.registries['reg.local'], cfg), /no hosts\.toml support/);
    assert.deepEqual(renderAllHostsToml(cfg), []);
  });

  it('lists every registry file at <config_path>/<dir>/hosts.toml', () => {
    const cfg = cfgFor({
      containerd_version: '1.6.39',
      config_path: '/etc/ctd/certs.d',
      registries: { 'registry.example:5000': {}, 'docker.io': { mirrors: ['https://m.example'] } },
    });
    assert.deepEqual(
      renderAllHostsToml(cfg).map((f) => [f.registry, f.path]),
      [
        ['docker.io', '/etc/ctd/certs.d/docker.io/hosts.toml'],
        ['registry.example:5000', '/etc/ctd/certs.d/registry.example_5000_/hosts.toml'],
      ],
    );
    assert.equal(hostsTomlPath(cfg, 'docker.io'), '/etc/ctd/certs.d/docker.io/hosts.toml');
  });
});

describe('host paths of pushed files', () => {
  it('hostsDirName uses the host_port_ form every release since 1.5 looks up first', () => {
    assert.equal(hostsDirName('docker.io'), 'docker.io');
    assert.equal(hostsDirName('registry.example:5000'), 'registry.example_5000_');
    assert.equal(hostsDirName('10.0.0.1:443'), '10.0.0.1_443_');
    assert.equal(hostsDirName('_default'), '_default');
  });

  it('registryFilePath and registryFiles agree with what the renderers reference', () => {
    assert.equal(registryFilePath('/etc/containerd/certs.d', 'reg.local:5000', '/home/op/pki/ca.crt'), '/etc/containerd/certs.d/reg.local_5000_/ca.crt');
    const cfg = cfgFor({
      containerd_version: '2.1.9',
      registries: {
        'reg.local:5000': { ca: '/pki/ca.crt', client_cert: '/pki/c.pem', client_key: '/pki/k.pem', mirrors: [{ url: 'https://m.local', ca: '/pki/ca.crt' }] },
      },
    });
    assert.deepEqual(registryFiles(cfg), [
      { registry: 'reg.local:5000', source: '/pki/c.pem', dest: '/etc/containerd/certs.d/reg.local_5000_/c.pem', mode: 0o644 },
      { registry: 'reg.local:5000', source: '/pki/ca.crt', dest: '/etc/containerd/certs.d/reg.local_5000_/ca.crt', mode: 0o644 },
      { registry: 'reg.local:5000', source: '/pki/k.pem', dest: '/etc/containerd/certs.d/reg.local_5000_/k.pem', mode: 0o600 },
    ]);
    const text = renderHostsToml('reg.local:5000', cfg.registries['reg.local:5000'], cfg).text;
    for (const f of registryFiles(cfg)) assert.ok(text.includes(tomlString(f.dest)), `${f.dest} referenced`);
  });
});

describe('hostile values round-trip exactly', () => {
  const hostile = [
    'a"b',
    "it's",
    'line1\nline2\r\n',
    '$(rm -rf /) `id` ${HOME}',
    'back\\slash\\\\ \\n \\u0041',
    'ünïcödé ✓ 𝄞 漢字 😀',
    '"""triple""" \'\'\'lit\'\'\'',
    '] \n[plugins."evil"]\nx = 1 #',
    'tab\there\u0000nul\u0007bell\u001bescape\u007fdel\u0085nel\u2028ls',
  ];

  it('tomlString survives every hostile string and each code point below U+3000', () => {
    for (const s of hostile) assert.equal(tomlOf(`k = ${tomlString(s)}`).k, s);
    let all = '';
    for (let c = 0; c < 0x3000; c++) if (c < 0xd800 || c > 0xdfff) all += String.fromCodePoint(c);
    all += '\u{1F600}\u{10FFFF}';
    assert.equal(tomlOf(`k = ${tomlString(all)}`).k, all);
    assert.throws(() => tomlString('\ud800'), /surrogate/);
    assert.deepEqual(tomlOf(`k = ${tomlValue([hostile, [1, -2], true])}`).k, [hostile, [1, -2], true]);
  });

  const headerSafe = (v: string) => v.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '');

  it('a hostile password and header survive config.toml (1.x) and hosts.toml (2.x) as the same value', () => {
    for (const pw of hostile.filter((s) => s !== '')) {
      const vars = {
        registries: { 'reg.local': { username: 'u', password: pw, mirrors: [{ url: 'https://m.local', headers: { 'X-Note': headerSafe(pw) } }] } },
      };
      const c1 = cfgFor({ containerd_version: '1.6.39', ...vars });
      const doc1 = tomlOf(renderConfig(c1).text);
      assert.equal(get(doc1, 'plugins', 'io.containerd.grpc.v1.cri', 'registry', 'configs', 'reg.local', 'auth', 'password'), pw);
      const c2 = cfgFor({ containerd_version: '2.3.4', ...vars });
      const doc2 = tomlOf(renderHostsToml('reg.local', c2.registries['reg.local'], c2).text);
      assert.equal(get(doc2, 'header', 'Authorization'), `Basic ${Buffer.from(`u:${pw}`).toString('base64')}`);
      assert.equal(get(doc2, 'host', 'https://m.local', 'header', 'X-Note'), headerSafe(pw));
      // Nothing leaked out of the strings into new tables.
      assert.deepEqual(Object.keys(doc2).sort(), ['header', 'host', 'server']);
    }
  });

  it('hostile paths and image names stay values in every config version', () => {
    const root = '/var/lib/"con$(tainerd)\\x\'ünï 😀';
    const image = 'reg.local/pause:$(id)"]\\[x]';
    for (const ver of ['1.4.13', '1.7.34', '2.0.11', '2.3.4']) {
      const doc = tomlOf(renderConfig(cfgFor({ containerd_version: ver, root_dir: root, state_dir: `${root}/state`, sandbox_image: image })).text);
      assert.equal(doc.root, root, ver);
      assert.equal(doc.state, `${root}/state`, ver);
      const img = ver.startsWith('1.')
        ? get(doc, 'plugins', 'io.containerd.grpc.v1.cri', 'sandbox_image')
        : get(doc, 'plugins', 'io.containerd.cri.v1.images', 'pinned_images', 'sandbox');
      assert.equal(img, image, ver);
      assert.deepEqual(Object.keys(doc).sort(), ['imports', 'oom_score', 'plugins', 'root', 'state', 'version'], ver);
    }
  });
});

describe('restrict_oom_score_adj', () => {
  it('goes into the table of the CRI plugin that reads it, for every config version', () => {
    for (const [ver, table] of [
      ['1.4.13', ['io.containerd.grpc.v1.cri']],
      ['1.7.34', ['io.containerd.grpc.v1.cri']],
      ['2.1.9', ['io.containerd.cri.v1.runtime']],
      ['2.3.4', ['io.containerd.cri.v1.runtime']],
    ] as const) {
      const doc = tomlOf(renderConfig(cfgFor({ containerd_version: ver, restrict_oom_score_adj: true })).text);
      assert.equal(get(doc, 'plugins', ...table, 'restrict_oom_score_adj'), true, ver);
      // The runtime table keeps its other settings beside it.
      assert.ok(get(doc, 'plugins', ...table, 'cni'), ver);
    }
  });

  it('false leaves the file as it was without the variable (no restart for hosts that never set it)', () => {
    for (const ver of ['1.4.13', '1.7.34', '2.1.9', '2.3.4']) {
      const without = renderConfig(cfgFor({ containerd_version: ver })).text;
      assert.equal(renderConfig(cfgFor({ containerd_version: ver, restrict_oom_score_adj: false })).text, without, ver);
      assert.doesNotMatch(without, /restrict_oom_score_adj/, ver);
    }
  });

  it('must be a boolean', () => {
    assert.match(
      validationError({ containerd_version: '2.1.9', restrict_oom_score_adj: 'yes' }),
      /^restrict_oom_score_adj: expected true or false, got "yes"/m,
    );
  });
});

describe('secrets', () => {
  it('are flagged and never shown by inspect/JSON/String', () => {
    const cfg = cfgFor({ containerd_version: '2.1.9', registries: { 'reg.local': { username: 'u', password: 'hunter2-secret' } } });
    const reg = cfg.registries['reg.local'];
    assert.ok(reg.auth && reg.auth.kind === 'basic');
    assert.equal(reg.auth.password.reveal(), 'hunter2-secret');
    assert.doesNotMatch(JSON.stringify(cfg), /hunter2/);
    assert.doesNotMatch(inspect(cfg, { depth: 10 }), /hunter2/);
    assert.doesNotMatch(String(reg.auth.password), /hunter2/);
  });

  it('a file without credentials is not flagged; a sensitive mirror header is', () => {
    const cfg = cfgFor({
      containerd_version: '2.1.9',
      registries: { a: { mirrors: ['https://m.a'] }, b: { mirrors: [{ url: 'https://m.b', headers: { 'X-Api-Key': 'k' } }] } },
    });
    assert.equal(renderHostsToml('a', cfg.registries.a, cfg).secret, false);
    assert.equal(renderHostsToml('b', cfg.registries.b, cfg).secret, true);
    assert.equal(renderConfig(cfg).secret, false);
  });

  it('validation messages never echo a password or auth value', () => {
    const msg = validationError({ containerd_version: '2.1.9', registries: { 'reg.local': { password: 'topsecret-value', auth: 'not base64 topsecret' } } });
    assert.doesNotMatch(msg, /topsecret/);
    assert.match(msg, /registries\.reg\.local: set either username\/password or auth, not both/);
  });
});

describe('determinism', () => {
  // 1.4 has no per-mirror headers, so its variant leaves them out.
  const a = (ver: string) => ({
    containerd_version: ver,
    registries: {
      'registry.example:5000': {
        username: 'u',
        password: 'p',
        mirrors: [{ url: 'https://m1', ...(ver === '1.4.13' ? {} : { headers: { 'X-Z': 'z', 'X-A': 'a' } }) }],
      },
      'docker.io': { mirrors: ['https://b', 'https://a'] },
      'quay.io': { ca: '/pki/q.crt' },
    },
  });
  const b = (ver: string) => ({
    registries: {
      'quay.io': { ca: '/pki/q.crt' },
      'docker.io': { mirrors: ['https://b', 'https://a'] },
      'registry.example:5000': {
        mirrors: [{ ...(ver === '1.4.13' ? {} : { headers: { 'X-A': 'a', 'X-Z': 'z' } }), url: 'https://m1' }],
        password: 'p',
        username: 'u',
      },
    },
    containerd_version: ver,
  });

  for (const ver of ['1.4.13', '1.7.34', '2.3.4']) {
    it(`same input renders identical bytes, whatever the map key order (${ver})`, () => {
      const ca = cfgFor(a(ver));
      const cb = cfgFor(b(ver));
      const once = renderConfig(ca).text;
      assert.equal(renderConfig(ca).text, once);
      assert.equal(renderConfig(cb).text, once);
      assert.deepEqual(renderAllHostsToml(cb), renderAllHostsToml(ca));
      // The unit depends on the version alone, however it is given.
      assert.equal(renderUnit(parseVersion(ver)), renderUnit(ver));
      assert.match(renderUnit(ver), new RegExp(`containerd ${ver.replace(/\./g, '\\.')}\\.\\n`));
    });
  }

  it('mirror order is the list order; header names are sorted', () => {
    const cfg = cfgFor(a('2.3.4'));
    const text = renderHostsToml('docker.io', cfg.registries['docker.io'], cfg).text;
    assert.ok(text.indexOf('"https://b"') > 0 && text.indexOf('"https://b"') < text.indexOf('"https://a"'));
    const reg = renderHostsToml('registry.example:5000', cfg.registries['registry.example:5000'], cfg).text;
    assert.ok(reg.indexOf('X-A = "a"') > 0 && reg.indexOf('X-A = "a"') < reg.indexOf('X-Z = "z"'));
  });
});

describe('validateRuntimeConfig', () => {
  it('applies the documented defaults', () => {
    const cfg = cfgFor({ containerd_version: '1.7.34', some_other_var: 1 });
    assert.deepEqual(
      { ...cfg, version: undefined },
      {
        containerdVersion: '1.7.34',
        version: undefined,
        systemdCgroup: true,
        sandboxImage: 'registry.k8s.io/pause:3.8',
        rootDir: '/var/lib/containerd',
        stateDir: '/run/containerd',
        oomScore: 0,
        restrictOomScoreAdj: false,
        snapshotter: 'overlayfs',
        cniBinDir: '/opt/cni/bin',
        cniConfDir: '/etc/cni/net.d',
        importsDir: '/etc/containerd/conf.d',
        configPath: '/etc/containerd/certs.d',
        registries: {},
      },
    );
  });

  it('default pause image follows the release line', () => {
    const cases: [string, string][] = [
      ['1.4.0', '3.2'],
      ['1.5.0', '3.5'],
      ['1.6.0', '3.6'],
      ['1.7.0', '3.8'],
      ['2.0.0', '3.10'],
      ['2.1.0', '3.10'],
      ['2.2.0', '3.10.1'],
      ['2.3.0', '3.10.2'],
    ];
    for (const [v, tag] of cases) assert.equal(defaultSandboxImage(parseVersion(v)), `registry.k8s.io/pause:${tag}`, v);
  });

  const base = { containerd_version: '2.1.9' };
  const cases: [string, Table, string][] = [
    [
      'mirror without scheme',
      { registries: { 'docker.io': { mirrors: ['mirror.local'] } } },
      'registries.docker.io.mirrors[0]: "mirror.local" has no scheme (http:// or https://)',
    ],
    [
      'mirror table without scheme',
      { registries: { 'docker.io': { mirrors: [{ url: 'mirror.local' }] } } },
      'registries.docker.io.mirrors[0].url: "mirror.local" has no scheme (http:// or https://)',
    ],
    [
      'mirror with another scheme',
      { registries: { 'docker.io': { mirrors: ['ftp://m.local'] } } },
      'registries.docker.io.mirrors[0]: "ftp://m.local" must use http:// or https://, not ftp://',
    ],
    [
      'credentials in a URL',
      { registries: { 'docker.io': { mirrors: ['https://u:p@m.local'] } } },
      'registries.docker.io.mirrors[0]: must not carry credentials in the URL',
    ],
    [
      'unknown capability',
      { registries: { 'docker.io': { mirrors: [{ url: 'https://m', capabilities: ['pull', 'pul'] }] } } },
      'registries.docker.io.mirrors[0].capabilities[1]: expected one of "pull", "resolve", "push", got "pul"; did you mean "pull"?',
    ],
    [
      'no capabilities',
      { registries: { 'docker.io': { mirrors: [{ url: 'https://m', capabilities: [] }] } } },
      'registries.docker.io.mirrors[0].capabilities: expected a list of at least 1 one of "pull", "resolve", "push", got 0',
    ],
    [
      'typo in a registry key',
      { registries: { 'docker.io': { mirror: ['https://m'] } } },
      'registries.docker.io.mirror: unknown key "mirror"; did you mean "mirrors"?',
    ],
    [
      'unknown registry key, no near miss',
      { registries: { 'docker.io': { proxy: 'x' } } },
      'registries.docker.io.proxy: unknown key "proxy" (known: server, mirrors, ca, client_cert, client_key, skip_verify, insecure_http, username, password, auth)',
    ],
    ['registry not a table', { registries: { 'docker.io': 'https://m' } }, 'registries.docker.io: expected a table, got string'],
    [
      'mirror neither URL nor table',
      { registries: { 'docker.io': { mirrors: [5] } } },
      'registries.docker.io.mirrors[0]: expected http(s) URL or table, got number',
    ],
    [
      'mirror table without url',
      { registries: { 'docker.io': { mirrors: [{ skip_verify: true }] } } },
      'registries.docker.io.mirrors[0].url: missing required key "url"',
    ],
    [
      'bad header name',
      { registries: { 'r.local': { mirrors: [{ url: 'https://m', headers: { 'X A': 'a' } }] } } },
      'registries.r.local.mirrors[0].headers."X A": is not a valid HTTP header name',
    ],
    [
      'header without values',
      { registries: { 'r.local': { mirrors: [{ url: 'https://m', headers: { 'X-A': [] } }] } } },
      'registries.r.local.mirrors[0].headers.X-A: expected a list of at least 1 string, got 0',
    ],
    [
      'malformed secret reference',
      { registries: { 'r.local': { username: 'u', password: { vault: 'x' } } } },
      'registries.r.local.password: expected a secret reference: { env = "NAME" }, { file = "path" } or { command = "…" }, got a table with keys ["vault"]',
    ],
    [
      'password as a number',
      { registries: { 'r.local': { username: 'u', password: 1234 } } },
      'registries.r.local.password: expected a string or a secret reference: { env = "NAME" }, { file = "path" } or { command = "…" }, got number',
    ],
    [
      'mirror listed twice',
      { registries: { 'r.local': { mirrors: ['https://m', { url: 'https://m' }] } } },
      'registries.r.local.mirrors[1]: "https://m" is listed twice',
    ],
    [
      'server on _default',
      { registries: { _default: { server: 'https://x', mirrors: ['https://m'] } } },
      'registries._default.server: _default applies to every registry and cannot name a server',
    ],
    [
      'credentials on _default',
      { registries: { _default: { username: 'u', password: 'secret-pw', mirrors: ['https://m'] } } },
      'registries._default: credentials cannot be set on _default',
    ],
    [
      'typo in a mirror key',
      { registries: { 'docker.io': { mirrors: [{ url: 'https://m', skipverify: true }] } } },
      'registries.docker.io.mirrors[0].skipverify: unknown key "skipverify"; did you mean "skip_verify"?',
    ],
    ['bad registry host', { registries: { 'https://docker.io': {} } }, 'registries."https://docker.io": "https://docker.io" is not a registry host'],
    [
      'client cert without key',
      { registries: { 'r.local': { client_cert: '/pki/c.pem' } } },
      'registries.r.local: client_cert and client_key must be set together',
    ],
    ['password without username', { registries: { 'r.local': { password: 'x' } } }, 'registries.r.local.username: must be a non-empty string'],
    ['bad auth', { registries: { 'r.local': { auth: 'bm9jb2xvbg' } } }, 'registries.r.local.auth: must be base64 of "username:password"'],
    ['relative root_dir', { root_dir: 'var/lib' }, 'root_dir: "var/lib" must be an absolute path'],
    ['oom_score out of range', { oom_score: 5000 }, 'oom_score: 5000 is out of range -1000..1000'],
    ['systemd_cgroup as string', { systemd_cgroup: 'yes' }, 'systemd_cgroup: expected true or false, got "yes"'],
    ['glob in imports_dir', { imports_dir: '/etc/c*' }, 'imports_dir: "/etc/c*" must not contain glob characters'],
    [
      'basename clash',
      { registries: { 'r.local': { ca: '/a/ca.crt', mirrors: [{ url: 'https://m', ca: '/b/ca.crt' }] } } },
      'registries.r.local.mirrors[0]: "/b/ca.crt" and "/a/ca.crt" would both be pushed as ca.crt',
    ],
    [
      'hosts.toml as a cert name',
      { registries: { 'r.local': { ca: '/x/hosts.toml' } } },
      'registries.r.local.ca: file name "hosts.toml" can\'t be used on the host',
    ],
    [
      'header with newline',
      { registries: { 'r.local': { mirrors: [{ url: 'https://m', headers: { 'X-A': 'a\nb' } }] } } },
      'registries.r.local.mirrors[0].headers.X-A: must not contain control characters',
    ],
    [
      'https server with insecure_http',
      { registries: { 'r.local': { server: 'https://r.local', insecure_http: true } } },
      'registries.r.local.server: "https://r.local" is https:// but insecure_http = true asks for plain http',
    ],
  ];
  for (const [name, vars, expected] of cases) {
    it(`names the variable: ${name}`, () => {
      const msg = validationError({ ...base, ...vars });
      assert.ok(
        msg.split('\n').some((line) => line.startsWith(expected)),
        `expected a line starting with\n  ${expected}\ngot\n  ${msg}`,
      );
    });
  }

  it('containerd_version is required and must be a supported release', () => {
    assert.match(validationError({}), /^containerd_version: missing required key "containerd_version"/m);
    assert.match(validationError({ containerd_version: '1.3.9' }), /^containerd_version: "1\.3\.9" is not supported/m);
    assert.match(validationError({ containerd_version: 'latest' }), /^containerd_version: "latest" is not a containerd version: expected MAJOR.MINOR.PATCH/m);
  });

  it('a registry with a bad key does not hide the rules across keys of another', () => {
    const msg = validationError({ containerd_version: '2.1.9', registries: { 'a.io': { mirror: ['https://m'] }, 'b.io': { client_cert: '/pki/c.pem' } } });
    assert.deepEqual(msg.split('\n'), [
      'registries.a.io.mirror: unknown key "mirror"; did you mean "mirrors"?',
      'registries.b.io: client_cert and client_key must be set together',
    ]);
  });

  it('reports every problem at once', () => {
    const msg = validationError({ containerd_version: '2.1.9', oom_score: 1.5, registries: { 'docker.io': { mirrors: ['a', 'b'] } } });
    assert.equal(msg.split('\n').length, 3);
  });

  it('rejects what the target release cannot express', () => {
    const mirrorWith = (m: Table) => ({ registries: { 'docker.io': { mirrors: [{ url: 'https://m.local', ...m }] } } });
    assert.match(
      validationError({ containerd_version: '1.4.13', ...mirrorWith({ headers: { 'X-A': 'a' } }) }),
      /^registries\.docker\.io\.mirrors\[0\]\.headers: per-mirror headers need containerd 1\.5/m,
    );
    assert.match(
      validationError({ containerd_version: '1.4.13', ...mirrorWith({ capabilities: ['pull'] }) }),
      /^registries\.docker\.io\.mirrors\[0\]\.capabilities: containerd 1\.4\.13 uses every mirror/m,
    );
    assert.match(
      validationError({ containerd_version: '1.5.18', ...mirrorWith({ override_path: true }) }),
      /^registries\.docker\.io\.mirrors\[0\]\.override_path: needs containerd 1\.6/m,
    );
    assert.match(
      validationError({ containerd_version: '1.6.16', registries: { _default: { mirrors: ['https://m'] } } }),
      /^registries\._default: _default needs containerd 1\.6\.17/m,
    );
    assert.match(
      validationError({ containerd_version: '1.7.20', registries: { _default: { skip_verify: true } } }),
      /^registries\._default\.mirrors: containerd 1\.7\.20 ignores a _default hosts\.toml without mirrors/m,
    );
    assert.match(
      validationError({
        containerd_version: '1.4.13',
        registries: { 'a.io': { mirrors: [{ url: 'https://shared', ca: '/p/a.crt' }] }, 'b.io': { mirrors: [{ url: 'https://shared', ca: '/p/b.crt' }] } },
      }),
      /^registries\.b\.io\.mirrors\[0\]: TLS settings for shared differ from those of registries\.a\.io\.mirrors\[0\]/m,
    );
    // The same settings are fine where hosts.toml carries them per registry.
    cfgFor({
      containerd_version: '2.0.0',
      registries: {
        _default: { skip_verify: true },
        'a.io': { mirrors: [{ url: 'https://shared', ca: '/p/a.crt' }] },
        'b.io': { mirrors: [{ url: 'https://shared', ca: '/p/b.crt' }] },
      },
    });
  });
});

describe('renderUnit', () => {
  const lines = (v: string) => renderUnit(v).split('\n');
  const common = [
    'ExecStartPre=-/sbin/modprobe overlay',
    'ExecStart=/usr/local/bin/containerd',
    'Type=notify',
    'Delegate=yes',
    'KillMode=process',
    'Restart=always',
    'RestartSec=5',
    'LimitNPROC=infinity',
    'LimitCORE=infinity',
    'TasksMax=infinity',
    'OOMScoreAdjust=-999',
    'WantedBy=multi-user.target',
  ];
  const cases: [string, string, string | null][] = [
    ['1.4.13', 'network.target local-fs.target', '1048576'],
    ['1.5.18', 'network.target local-fs.target', 'infinity'],
    ['1.6.36', 'network.target local-fs.target', 'infinity'],
    ['1.6.39', 'network.target local-fs.target dbus.service', 'infinity'],
    ['1.7.23', 'network.target local-fs.target', 'infinity'],
    ['1.7.34', 'network.target local-fs.target dbus.service', 'infinity'],
    ['2.0.11', 'network.target local-fs.target dbus.service', null],
    ['2.1.9', 'network.target dbus.service', null],
    ['2.3.4', 'network.target dbus.service', null],
  ];
  for (const [ver, after, nofile] of cases) {
    it(`matches upstream's unit for ${ver}`, () => {
      const l = lines(ver);
      for (const c of common) assert.ok(l.includes(c), `${ver}: ${c}`);
      assert.deepEqual(
        l.filter((x) => x.startsWith('After=')),
        [`After=${after}`],
      );
      assert.deepEqual(
        l.filter((x) => x.startsWith('LimitNOFILE=')),
        nofile ? [`LimitNOFILE=${nofile}`] : [],
      );
      assert.deepEqual(
        l.filter((x) => x.startsWith('[')),
        ['[Unit]', '[Service]', '[Install]'],
      );
    });
  }
});

describe('renderCrictlYaml', () => {
  it('writes only keys crictl accepts', () => {
    const text = renderCrictlYaml({ endpoint: 'unix:///run/containerd/containerd.sock', timeout: 10, debug: false });
    const keys = text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':')[0]);
    assert.deepEqual(keys, ['runtime-endpoint', 'image-endpoint', 'timeout', 'debug']);
    assert.match(text, /^runtime-endpoint: "unix:\/\/\/run\/containerd\/containerd\.sock"$/m);
    assert.match(text, /^image-endpoint: "unix:\/\/\/run\/containerd\/containerd\.sock"$/m);
    assert.match(text, /^timeout: 10$/m);
    assert.match(text, /^debug: false$/m);
  });

  it('refuses values crictl would misread', () => {
    assert.throws(() => renderCrictlYaml({ endpoint: '/run/containerd/containerd.sock', timeout: 10, debug: false }), /unix:\/\/\/path/);
    assert.throws(() => renderCrictlYaml({ endpoint: 'unix:///run/x.sock\nfoo: bar', timeout: 10, debug: false }), /unix:\/\/\/path/);
    assert.throws(() => renderCrictlYaml({ endpoint: 'unix:///run/x.sock', timeout: 1.5, debug: false }), /whole number/);
  });
});
