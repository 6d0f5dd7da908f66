// Pull error diagnosis against the exact messages containerd 1.4.13, 1.7.24 and 2.1.9 returned over CRI
// when pulling from the test fleet's registries with one setting missing or wrong.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diagnosePull, errorEndpoint, formatPullFailure, imageRegistryHost, pullErrorDetail } from '../../src/modules/containerd/pull-errors.js';
import { validateRuntimeConfig } from '../../src/modules/containerd/config/validate.js';
import { ctrPullCommand } from '../../src/modules/containerd/tasks/verify.js';
import { parseVersion } from '../../src/modules/containerd/version.js';

const PRIVATE = 'registry.fleet.test:5000';
const IMG = `${PRIVATE}/hoist/busybox:1`;

function regs(privateVars: Record<string, unknown>, version = '1.7.24') {
  return validateRuntimeConfig({
    containerd_version: version,
    registries: {
      'docker.io': { mirrors: [{ url: 'https://mirror.fleet.test:5443', ca: '/pki/ca.pem' }] },
      [PRIVATE]: privateVars,
    },
  });
}

const FULL = { ca: '/pki/ca.pem', client_cert: '/pki/client.pem', client_key: '/pki/client.key', username: 'hoist', password: 'Pw-For-Unit-Tests' };
const without = (...keys: string[]) => Object.fromEntries(Object.entries(FULL).filter(([k]) => !keys.includes(k)));

const V17 = (tail: string) =>
  `/runtime.v1.ImageService/PullImage: UNKNOWN: failed to pull and unpack image "${IMG}": failed to resolve reference "${IMG}": ${tail}`;
const V21 = (tail: string) => `/runtime.v1.ImageService/PullImage: UNKNOWN: failed to pull and unpack image "${IMG}": failed to resolve image: ${tail}`;
const V14 = (tail: string) =>
  `/runtime.v1alpha2.ImageService/PullImage: UNKNOWN: failed to pull and unpack image "${IMG}": failed to resolve reference "${IMG}": ${tail}`;
const HEAD = `failed to do request: Head "https://${PRIVATE}/v2/hoist/busybox/manifests/1"`;

describe('pull error diagnosis', () => {
  it('finds the registry of an image reference the way containerd normalises it', () => {
    assert.equal(imageRegistryHost('busybox'), 'docker.io');
    assert.equal(imageRegistryHost('library/busybox:1'), 'docker.io');
    assert.equal(imageRegistryHost('docker.io/library/busybox:1'), 'docker.io');
    assert.equal(imageRegistryHost(IMG), PRIVATE);
    assert.equal(imageRegistryHost('localhost/x'), 'localhost');
  });

  it('strips the gRPC method and the repeated image reference, keeps the cause', () => {
    assert.equal(pullErrorDetail(V17(`${HEAD}: remote error: tls: bad certificate`)), `${HEAD}: remote error: tls: bad certificate`);
    assert.equal(pullErrorDetail(V21('x: not found')), 'x: not found');
    assert.equal(errorEndpoint(`${HEAD}: x`), `https://${PRIVATE}`);
    assert.equal(errorEndpoint('pulling from host registry.fleet.test:5000 failed with status code [manifests 1]: 401 Unauthorized'), PRIVATE);
    assert.equal(errorEndpoint('nothing here'), null);
  });

  const caMsgs = [
    V17(`${HEAD}: tls: failed to verify certificate: x509: certificate signed by unknown authority`),
    V21(`${HEAD}: tls: failed to verify certificate: x509: certificate signed by unknown authority`),
    V14(`${HEAD}: x509: certificate signed by unknown authority`),
  ];
  it('x509 unknown authority: CA not trusted, missing or wrong', () => {
    for (const raw of caMsgs) {
      const missing = diagnosePull(IMG, raw, regs(without('ca')).registries);
      assert.equal(missing.problem, 'ca-not-trusted');
      assert.equal(missing.registry, PRIVATE);
      assert.match(missing.message, /^CA not trusted: .*set registries\."registry\.fleet\.test:5000"\.ca/);
      const wrong = diagnosePull(IMG, raw, regs({ ...FULL, ca: '/pki/other-ca.pem' }).registries);
      assert.match(wrong.message, /^CA not trusted: .*not signed by the configured CA \(registries\."registry\.fleet\.test:5000"\.ca = other-ca\.pem\)/);
    }
  });

  it('a TLS alert from the server: client certificate rejected or missing', () => {
    for (const raw of [
      V17(`${HEAD}: remote error: tls: bad certificate`),
      V21(`${HEAD}: remote error: tls: bad certificate`),
      V14(`${HEAD}: remote error: tls: certificate required`),
    ]) {
      const missing = diagnosePull(IMG, raw, regs(without('client_cert', 'client_key')).registries);
      assert.equal(missing.problem, 'client-certificate');
      assert.match(
        missing.message,
        /^client certificate rejected or missing: .*none is configured; set registries\."registry\.fleet\.test:5000"\.client_cert and client_key/,
      );
      const wrong = diagnosePull(IMG, raw, regs({ ...FULL, client_cert: '/pki/other-client.pem', client_key: '/pki/other-client.key' }).registries);
      assert.match(wrong.message, /refused the configured client certificate \(registries\."registry\.fleet\.test:5000"\.client_cert = other-client\.pem\)/);
    }
  });

  it("401 in every release's wording: credentials rejected or missing", () => {
    const raws = [
      V17('pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials'),
      V17(`unexpected status from HEAD request to https://${PRIVATE}/v2/hoist/busybox/manifests/1: 401 Unauthorized`),
      V21('pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials'),
      V14(`pulling from host ${PRIVATE} failed with status code [manifests 1]: 401 Unauthorized`),
    ];
    for (const raw of raws) {
      const missing = diagnosePull(IMG, raw, regs(without('username', 'password')).registries);
      assert.equal(missing.problem, 'credentials', raw);
      assert.match(
        missing.message,
        /^credentials rejected or missing: .*none is configured; set registries\."registry\.fleet\.test:5000"\.username and password/,
      );
      const wrong = diagnosePull(IMG, raw, regs(FULL).registries);
      assert.match(wrong.message, /refused the configured credentials/);
      assert.ok(!wrong.message.includes('Pw-For-Unit-Tests'));
    }
  });

  it('an HTTP answer to a TLS hello: insecure_http is the fix', () => {
    const img = 'plain.fleet.test:5001/hoist/busybox:1';
    const raw = `/runtime.v1.ImageService/PullImage: UNKNOWN: failed to pull and unpack image "${img}": failed to resolve reference "${img}": failed to do request: Head "https://plain.fleet.test:5001/v2/hoist/busybox/manifests/1": http: server gave HTTP response to HTTPS client`;
    const d = diagnosePull(img, raw, {});
    assert.equal(d.problem, 'plain-http');
    assert.match(d.message, /set registries\."plain\.fleet\.test:5001"\.insecure_http = true/);
  });

  it('a failing mirror is named as the mirror, with its own variable path', () => {
    const img = 'docker.io/library/busybox:1';
    const raw = `/runtime.v1.ImageService/PullImage: UNKNOWN: failed to pull and unpack image "${img}": failed to resolve reference "${img}": failed to do request: Head "https://mirror.fleet.test:5443/v2/library/busybox/manifests/1?ns=docker.io": tls: failed to verify certificate: x509: certificate signed by unknown authority`;
    const cfg = validateRuntimeConfig({ containerd_version: '1.7.24', registries: { 'docker.io': { mirrors: ['https://mirror.fleet.test:5443'] } } });
    const d = diagnosePull(img, raw, cfg.registries);
    assert.equal(d.endpoint, 'https://mirror.fleet.test:5443');
    assert.equal(d.registry, 'docker.io');
    assert.match(d.message, /set registries\."docker\.io"\.mirrors\[0\]\.ca/);
  });

  it('not found, name resolution, refused, and anything else verbatim', () => {
    assert.equal(diagnosePull(IMG, V21(`${PRIVATE}/hoist/nothere:1: not found`)).problem, 'not-found');
    const dns = diagnosePull(
      'docker.io/library/busybox:1',
      V14(
        'failed to do request: Head "https://registry-1.docker.io/v2/library/busybox/manifests/1": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: read udp 10.232.3.2:58004->10.255.255.53:53: i/o timeout',
      ),
    );
    assert.equal(dns.problem, 'name-resolution');
    assert.match(dns.message, /^cannot resolve registry-1\.docker\.io/);
    assert.equal(diagnosePull(IMG, V17(`${HEAD}: dial tcp 10.232.1.1:5000: connect: connection refused`)).problem, 'unreachable');
    const other = diagnosePull(IMG, V17('something new'));
    assert.equal(other.problem, 'other');
    assert.equal(formatPullFailure(IMG, other), `pull ${IMG}: something new`);
    assert.match(
      formatPullFailure(IMG, diagnosePull(IMG, caMsgs[0])),
      /^pull registry\.fleet\.test:5000\/hoist\/busybox:1: CA not trusted: .* \(containerd: failed to do request: .*unknown authority\)$/,
    );
  });
});

describe('ctr equivalent of a CRI pull', () => {
  it('uses --hosts-dir from 1.5 on, --user only where credentials live in config.toml (1.x)', () => {
    assert.equal(ctrPullCommand(regs(FULL, '1.7.24'), IMG), `ctr -n k8s.io image pull --hosts-dir /etc/containerd/certs.d --user hoist ${IMG}`);
    assert.equal(ctrPullCommand(regs(FULL, '2.1.9'), IMG), `ctr -n k8s.io image pull --hosts-dir /etc/containerd/certs.d ${IMG}`);
    assert.equal(
      ctrPullCommand(regs(FULL, '1.7.24'), 'docker.io/library/busybox:1'),
      'ctr -n k8s.io image pull --hosts-dir /etc/containerd/certs.d docker.io/library/busybox:1',
    );
    assert.equal(ctrPullCommand(regs(FULL, '1.4.13'), IMG), null);
    assert.equal(
      ctrPullCommand({ ...regs(FULL, '2.1.9'), version: parseVersion('2.1.9'), configPath: '/etc/my certs' }, IMG),
      `ctr -n k8s.io image pull --hosts-dir $'/etc/my certs' ${IMG}`,
    );
  });
});
