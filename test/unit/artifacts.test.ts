import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/util/errors.js';
import { COMPANION_VERSIONS, normalizeReleaseBaseUrl, parseReleaseVersion, releaseCatalog } from '../../src/modules/containerd/catalog.js';
import { ChecksumError, expectedSha256 } from '../../src/artifacts/checksum-policy.js';

const H1 = 'a'.repeat(64);
const H2 = '0123456789abcdef'.repeat(4);
const H3 = 'F'.repeat(64);

describe('releaseCatalog: containerd 1.x', () => {
  it('returns only the cri-containerd-cni bundle with exact URLs', () => {
    const list = releaseCatalog({ containerdVersion: '1.7.34' });
    assert.deepEqual(list, [
      {
        id: 'bundle',
        name: 'cri-containerd-cni-1.7.34-linux-amd64.tar.gz',
        version: '1.7.34',
        url: 'https://github.com/containerd/containerd/releases/download/v1.7.34/cri-containerd-cni-1.7.34-linux-amd64.tar.gz',
        checksumUrl: 'https://github.com/containerd/containerd/releases/download/v1.7.34/cri-containerd-cni-1.7.34-linux-amd64.tar.gz.sha256sum',
        checksumFormat: 'sha256sum',
      },
    ]);
  });

  it('accepts crictlVersion false but refuses component versions the bundle would ignore', () => {
    assert.equal(releaseCatalog({ containerdVersion: '1.6.39', crictlVersion: false }).length, 1);
    assert.throws(() => releaseCatalog({ containerdVersion: '1.7.34', runcVersion: '1.3.6' }), /runc_version "1.3.6" cannot be used with containerd 1.7.34/);
    assert.throws(() => releaseCatalog({ containerdVersion: '1.7.34', cniVersion: '1.9.0' }), /cni_version/);
    assert.throws(() => releaseCatalog({ containerdVersion: '1.7.34', crictlVersion: '1.29.0' }), /crictl_version/);
  });

  it('refuses lines older than 1.4 and majors other than 1 and 2', () => {
    assert.throws(() => releaseCatalog({ containerdVersion: '1.3.9' }), /too old/);
    assert.throws(() => releaseCatalog({ containerdVersion: '3.0.0' }), /not 3\.x/);
    assert.throws(() => releaseCatalog({ containerdVersion: '0.2.1' }), /not 0\.x/);
  });
});

describe('releaseCatalog: containerd 2.x', () => {
  it('lists containerd, runc, CNI and crictl with exact URLs and formats (2.1 defaults)', () => {
    const list = releaseCatalog({ containerdVersion: '2.1.4' });
    assert.deepEqual(list, [
      {
        id: 'containerd',
        name: 'containerd-2.1.4-linux-amd64.tar.gz',
        version: '2.1.4',
        url: 'https://github.com/containerd/containerd/releases/download/v2.1.4/containerd-2.1.4-linux-amd64.tar.gz',
        checksumUrl: 'https://github.com/containerd/containerd/releases/download/v2.1.4/containerd-2.1.4-linux-amd64.tar.gz.sha256sum',
        checksumFormat: 'sha256sum',
      },
      {
        id: 'runc',
        name: 'runc.amd64',
        version: '1.3.6',
        url: 'https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.amd64',
        checksumUrl: 'https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.sha256sum',
        checksumFormat: 'sha256sum-clearsigned',
      },
      {
        id: 'cni',
        name: 'cni-plugins-linux-amd64-v1.9.0.tgz',
        version: '1.9.0',
        url: 'https://github.com/containernetworking/plugins/releases/download/v1.9.0/cni-plugins-linux-amd64-v1.9.0.tgz',
        checksumUrl: 'https://github.com/containernetworking/plugins/releases/download/v1.9.0/cni-plugins-linux-amd64-v1.9.0.tgz.sha256',
        checksumFormat: 'sha256sum',
      },
      {
        id: 'crictl',
        name: 'crictl-v1.30.1-linux-amd64.tar.gz',
        version: '1.30.1',
        url: 'https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.30.1/crictl-v1.30.1-linux-amd64.tar.gz',
        checksumUrl: 'https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.30.1/crictl-v1.30.1-linux-amd64.tar.gz.sha256',
        checksumFormat: 'bare-hex',
      },
    ]);
  });

  it('picks companion versions per minor line', () => {
    const versions = (v: string) => Object.fromEntries(releaseCatalog({ containerdVersion: v }).map((a) => [a.id, a.version]));
    assert.deepEqual(versions('2.0.0'), { containerd: '2.0.0', runc: '1.3.6', cni: '1.5.1', crictl: '1.30.1' });
    assert.deepEqual(versions('2.2.7'), { containerd: '2.2.7', runc: '1.3.6', cni: '1.9.0', crictl: '1.33.0' });
    assert.deepEqual(versions('2.3.4'), { containerd: '2.3.4', runc: '1.4.3', cni: '1.9.1', crictl: '1.35.0' });
    assert.deepEqual(versions('2.4.0-beta.0'), { containerd: '2.4.0-beta.0', runc: '1.5.1', cni: '1.9.1', crictl: '1.35.0' });
    // A line newer than the table falls back to the newest known companions.
    const newest = COMPANION_VERSIONS['2.4'];
    assert.deepEqual(versions('2.9.1'), { containerd: '2.9.1', ...newest });
  });

  it('puts a pre-release version into tag and asset name verbatim', () => {
    const [ctd] = releaseCatalog({ containerdVersion: '2.4.0-beta.0' });
    assert.equal(ctd.url, 'https://github.com/containerd/containerd/releases/download/v2.4.0-beta.0/containerd-2.4.0-beta.0-linux-amd64.tar.gz');
  });

  it('applies overrides, crictl opt-out and a mirror base URL', () => {
    const list = releaseCatalog({
      containerdVersion: '2.3.4',
      releaseBaseUrl: 'http://mirror.local:8080/gh/',
      runcVersion: '1.2.5',
      cniVersion: '1.6.2',
      crictlVersion: false,
    });
    assert.deepEqual(
      list.map((a) => a.id),
      ['containerd', 'runc', 'cni'],
    );
    assert.equal(list[1].url, 'http://mirror.local:8080/gh/opencontainers/runc/releases/download/v1.2.5/runc.amd64');
    assert.equal(list[1].checksumUrl, 'http://mirror.local:8080/gh/opencontainers/runc/releases/download/v1.2.5/runc.sha256sum');
    assert.equal(list[2].url, 'http://mirror.local:8080/gh/containernetworking/plugins/releases/download/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz');
    const withCrictl = releaseCatalog({ containerdVersion: '2.3.4', crictlVersion: '1.36.0' });
    assert.equal(withCrictl[3].name, 'crictl-v1.36.0-linux-amd64.tar.gz');
    assert.equal(withCrictl[3].version, '1.36.0');
  });

  it('attaches pinned digests (normalised to lower case) to the named assets only', () => {
    const list = releaseCatalog({
      containerdVersion: '2.1.4',
      pinnedSha256: { 'runc.amd64': H3, 'containerd-2.1.4-linux-amd64.tar.gz': ` ${H1} ` },
    });
    const byId = Object.fromEntries(list.map((a) => [a.id, a.pinnedSha256]));
    assert.deepEqual(byId, { containerd: H1, runc: 'f'.repeat(64), cni: undefined, crictl: undefined });
  });

  it('refuses pins for unknown assets and malformed digests', () => {
    assert.throws(
      () => releaseCatalog({ containerdVersion: '2.1.4', pinnedSha256: { 'runc.arm64': H1 } }),
      (e: unknown) => e instanceof InputError && /pinned_sha256 names "runc.arm64"/.test(e.message) && /runc\.amd64/.test(e.message),
    );
    assert.throws(() => releaseCatalog({ containerdVersion: '2.1.4', pinnedSha256: { 'runc.amd64': 'abc' } }), /64 hex/);
    assert.throws(() => releaseCatalog({ containerdVersion: '2.1.4', pinnedSha256: { 'runc.amd64': 'z'.repeat(64) } }), /64 hex/);
  });
});

describe('input validation', () => {
  it('rejects a base URL without scheme or with a non-http scheme', () => {
    assert.throws(
      () => releaseCatalog({ containerdVersion: '2.1.4', releaseBaseUrl: 'mirror.local' }),
      (e: unknown) => e instanceof InputError && e.message.startsWith('release_base_url "mirror.local" has no scheme'),
    );
    assert.throws(() => normalizeReleaseBaseUrl('mirror.local:8080/x'), /has no scheme|must use http/);
    assert.throws(() => normalizeReleaseBaseUrl('ftp://mirror.local'), /must use http or https, not ftp/);
    assert.throws(() => normalizeReleaseBaseUrl('https://mirror.local/?a=b'), /query or fragment/);
    assert.throws(() => normalizeReleaseBaseUrl(''), /must be an http\(s\) URL/);
    assert.equal(normalizeReleaseBaseUrl('https://mirror.local///'), 'https://mirror.local');
    assert.equal(normalizeReleaseBaseUrl('https://github.com'), 'https://github.com');
  });

  it('validates version strings strictly', () => {
    const v = parseReleaseVersion('2.1.4', 'x');
    assert.deepEqual([v.major, v.minor, v.patch, v.prerelease], [2, 1, 4, []]);
    const pre = parseReleaseVersion('2.4.0-rc.1', 'x');
    assert.deepEqual([pre.major, pre.minor, pre.patch, pre.prerelease], [2, 4, 0, ['rc', '1']]);
    for (const bad of ['2.1', '2.1.4.1', '2.1.x', '02.1.4', '2.1.4-', '2.1.4-beta..0', ' 2.1.4', '2.1.4 ', 'latest', '']) {
      assert.throws(() => parseReleaseVersion(bad, 'containerd_version'), InputError, `should reject ${JSON.stringify(bad)}`);
    }
    assert.throws(() => parseReleaseVersion('v2.1.4', 'containerd_version'), /must not start with "v" \(write "2\.1\.4"\)/);
    assert.throws(() => releaseCatalog({ containerdVersion: '2.1' }), /containerd_version "2.1" is not a version/);
    assert.throws(() => releaseCatalog({ containerdVersion: '2.1.4', runcVersion: 'v1.3.6' }), /runc_version "v1.3.6" must not start/);
    assert.throws(() => releaseCatalog({ containerdVersion: '2.1.4', cniVersion: '1.9' }), /cni_version "1.9" is not a version/);
    assert.throws(() => releaseCatalog({ containerdVersion: '2.1.4', crictlVersion: '' }), /crictl_version must be a version string/);
  });
});

describe('expectedSha256', () => {
  it('reads containerd/CNI style "<hex>  <name>" files', () => {
    assert.equal(expectedSha256(`${H1}  containerd-2.1.4-linux-amd64.tar.gz\n`, 'sha256sum', 'containerd-2.1.4-linux-amd64.tar.gz'), H1);
    const multi = `${H1}  other.tgz\n${H2} *cni.tgz\n`;
    assert.equal(expectedSha256(multi, 'sha256sum', 'cni.tgz'), H2);
    assert.equal(expectedSha256(`${H3}  ./bin/cni.tgz\r\n`, 'sha256sum', 'cni.tgz'), 'f'.repeat(64));
  });

  it('reads the runc clear-signed multi-line file', () => {
    const text = [
      '-----BEGIN PGP SIGNED MESSAGE-----',
      'Hash: SHA256',
      '',
      `${H1}  runc.arm64`,
      `${H2}  runc.amd64`,
      `- ${H3}  runc.ppc64le`,
      `${H3}  runc.tar.xz`,
      '-----BEGIN PGP SIGNATURE-----',
      '',
      `${H1}  runc.amd64`,
      'iQIzBAEBCAAdFiEE=',
      '-----END PGP SIGNATURE-----',
      '',
    ].join('\n');
    // The line after the signature marker must not count even though it names runc.amd64.
    assert.equal(expectedSha256(text, 'sha256sum-clearsigned', 'runc.amd64'), H2);
    assert.equal(expectedSha256(text, 'sha256sum-clearsigned', 'runc.ppc64le'), 'f'.repeat(64));
    assert.throws(
      () => expectedSha256(text, 'sha256sum-clearsigned', 'runc.s390x', 'runc.sha256sum'),
      /runc\.s390x is not listed in runc\.sha256sum \(lists: runc\.arm64, runc\.amd64, runc\.ppc64le, runc\.tar\.xz\)/,
    );
    const truncated = text.split('-----BEGIN PGP SIGNATURE-----')[0];
    assert.throws(() => expectedSha256(truncated, 'sha256sum-clearsigned', 'runc.amd64'), /truncated/);
  });

  it('reads the crictl hex-only file', () => {
    assert.equal(expectedSha256(`${H3}\n`, 'bare-hex', 'crictl.tar.gz'), 'f'.repeat(64));
    assert.equal(expectedSha256(`${H1}  crictl.tar.gz`, 'bare-hex', 'crictl.tar.gz'), H1);
    assert.throws(() => expectedSha256(`${H1}  critest.tar.gz`, 'bare-hex', 'crictl.tar.gz'), /crictl\.tar\.gz is not listed/);
    assert.throws(() => expectedSha256('<html>Not Found</html>', 'bare-hex', 'crictl.tar.gz'), ChecksumError);
  });

  it('rejects files that do not list the asset or list it twice', () => {
    assert.throws(() => expectedSha256('<html></html>', 'sha256sum', 'a.tgz'), /malformed sha256 for a\.tgz/);
    assert.throws(() => expectedSha256('<html>\n<body>Not Found</body>\n</html>', 'sha256sum', 'a.tgz'), /holds no checksum lines/);
    assert.throws(() => expectedSha256(`${H1}  b.tgz\n`, 'sha256sum', 'a.tgz'), /a\.tgz is not listed \(lists: b\.tgz\)/);
    assert.throws(() => expectedSha256(`${H1}  a.tgz\n${H2}  a.tgz\n`, 'sha256sum', 'a.tgz'), /2 different hashes/);
    // A partial hex is not a hash.
    assert.throws(() => expectedSha256(`${H1.slice(1)}  a.tgz\n`, 'sha256sum', 'a.tgz'), ChecksumError);
  });
});
