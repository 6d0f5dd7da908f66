import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, HOIST, ROOT } from '../support/hoist.js';
import { loggingProxy } from '../support/logging-proxy.js';
import { socksProxy } from '../support/socks-proxy.js';

// A private CA and a server certificate it signed, as a company's TLS-inspecting proxy or mirror has.
const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-extra-ca-'));
const f = (n: string) => path.join(dir, n);
const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
ssl(
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-nodes',
  '-keyout',
  f('ca.key'),
  '-out',
  f('ca.pem'),
  '-days',
  '2',
  '-subj',
  '/CN=hoist test CA',
);
ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1');
writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\n');
ssl(
  'x509',
  '-req',
  '-in',
  f('srv.csr'),
  '-CA',
  f('ca.pem'),
  '-CAkey',
  f('ca.key'),
  '-CAcreateserial',
  '-out',
  f('srv.pem'),
  '-days',
  '2',
  '-extfile',
  f('ext'),
);

let server: https.Server;
let plain: http.Server;
let url: string;
let plainUrl: string;
before(async () => {
  server = https.createServer({ key: readFileSync(f('srv.key')), cert: readFileSync(f('srv.pem')) }, (_req, res) => res.end('release-bytes'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/SHA256SUMS`;
  plain = http.createServer((req, res) => {
    if (req.url === '/missing') res.writeHead(404);
    res.end('plain-bytes');
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/SHA256SUMS`;
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => plain.close(() => resolve()));
});

/** The fixture in a process of its own, with exactly these two variables (and any others given); not sync: the server is in this process. */
async function fetchWith(env: Record<string, string>, from = url): Promise<{ child: string; result: string }> {
  const base = { ...process.env };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'HOIST_DEFERRED_EXTRA_CA_CERTS', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'])
    delete base[k];
  const { stdout: out } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/unit/fixtures/extra-ca-fetch.ts'), from], {
    env: { ...base, ...env },
    encoding: 'utf8',
    cwd: ROOT,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { child: string; result: string };
}

test('a deferred NODE_EXTRA_CA_CERTS is trusted for downloads and given back, unchanged, to the processes hoist starts', async () => {
  const r = await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('ca.pem') });
  assert.equal(r.result, 'body:release-bytes');
  assert.equal(r.child, `${f('ca.pem')}|unset`);
});

test('without the CA the same download fails its certificate check (the test above is not trivially true)', async () => {
  const r = await fetchWith({});
  assert.match(r.result, /^error:.*(certificate|self.signed|verify)/i);
  assert.equal(r.child, 'unset|unset');
});

test("the deferred CA is trusted through a proxy's CONNECT tunnel too", async () => {
  const proxy = await loggingProxy();
  try {
    const r = await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('ca.pem'), HTTPS_PROXY: proxy.url });
    assert.equal(r.result, 'body:release-bytes');
    assert.deepEqual(proxy.log, [`CONNECT ${new URL(url).host}`]);
  } finally {
    await proxy.close();
  }
});

test('an https proxy whose certificate the deferred CA signed is trusted, beside an http proxy for http', async () => {
  const tlsProxy = await loggingProxy('127.0.0.1', { key: readFileSync(f('srv.key')), cert: readFileSync(f('srv.pem')) });
  const plainProxy = await loggingProxy();
  try {
    const r = await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('ca.pem'), HTTPS_PROXY: tlsProxy.url, HTTP_PROXY: plainProxy.url });
    assert.equal(r.result, 'body:release-bytes');
    assert.deepEqual(tlsProxy.log, [`CONNECT ${new URL(url).host}`]);
    assert.equal(
      (await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('ca.pem'), HTTPS_PROXY: tlsProxy.url, HTTP_PROXY: plainProxy.url }, plainUrl)).result,
      'body:plain-bytes',
    );
    assert.deepEqual(plainProxy.log, [`GET ${plainUrl}`]);
  } finally {
    await tlsProxy.close();
    await plainProxy.close();
  }
});

test('a SOCKS proxy is spoken to in SOCKS, with or without a deferred CA', async () => {
  const socks = await socksProxy();
  try {
    assert.equal((await fetchWith({ HTTP_PROXY: socks.url }, plainUrl)).result, 'body:plain-bytes');
    assert.equal((await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('ca.pem'), HTTP_PROXY: socks.url }, plainUrl)).result, 'body:plain-bytes');
    assert.deepEqual(socks.greetings, [5, 5]);
  } finally {
    await socks.close();
  }
});

test('a deferred file hoist cannot use: downloads go on with the default store, as with node, and a failed certificate check says why', async () => {
  // Nothing over TLS: the file is not in the way.
  assert.equal((await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('nope.pem') }, plainUrl)).result, 'body:plain-bytes');
  const missing = await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('nope.pem') });
  assert.match(missing.result, /^error:.*(certificate|self.signed|verify)/i);
  assert.ok(missing.result.includes(`(NODE_EXTRA_CA_CERTS=${f('nope.pem')} was not used: cannot read the file (ENOENT))`), missing.result);
  writeFileSync(f('empty.pem'), 'not a certificate\n');
  assert.match(
    (await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('empty.pem') })).result,
    /NODE_EXTRA_CA_CERTS=.*empty\.pem was not used: the file holds no PEM certificate/,
  );
  // As node reads the file: the certificates before the first it cannot parse are used.
  const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  writeFileSync(f('bad.pem'), readFileSync(f('ca.pem'), 'utf8') + broken);
  assert.equal((await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('bad.pem') })).result, 'body:release-bytes');
  writeFileSync(f('bad-first.pem'), broken + readFileSync(f('ca.pem'), 'utf8'));
  assert.match(
    (await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('bad-first.pem') })).result,
    /NODE_EXTRA_CA_CERTS=.*bad-first\.pem: certificate 1 of 2 is not valid .*; none was used/,
  );
  // A failure that is not a certificate check does not point at the file.
  const notFound = await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('nope.pem') }, plainUrl.replace('/SHA256SUMS', '/missing'));
  assert.match(notFound.result, /^error:.*404/);
  assert.doesNotMatch(notFound.result, /NODE_EXTRA_CA_CERTS/);
  // The older label node's reader also takes.
  writeFileSync(f('x509.pem'), readFileSync(f('ca.pem'), 'utf8').replace(/CERTIFICATE/g, 'X509 CERTIFICATE'));
  assert.equal((await fetchWith({ HOIST_DEFERRED_EXTRA_CA_CERTS: f('x509.pem') })).result, 'body:release-bytes');
});

test('bin/hoist: node does not read NODE_EXTRA_CA_CERTS at start-up, the processes hoist starts get it back', () => {
  const env: NodeJS.ProcessEnv = { ...launcherEnv(), NODE_EXTRA_CA_CERTS: f('nope.pem'), NO_COLOR: '1', XDG_STATE_HOME: f('state') };
  // Node warns at start-up about a file it cannot load: with node directly, not with the launcher.
  const direct = spawnSync(process.execPath, [HOIST, '--version'], { env, encoding: 'utf8' });
  assert.match(direct.stderr, /Ignoring extra certs from/);
  const launched = spawnSync(BIN, ['--version'], { env, encoding: 'utf8' });
  assert.equal(launched.status, 0);
  assert.equal(launched.stderr, '');
  // A ProxyCommand is a process hoist starts: it sees the variable as the user set it, and not the hand-over.
  writeFileSync(f('inv.toml'), '[hosts.x]\naddress = "127.0.0.1"\nport = 9\nuser = "root"\n');
  writeFileSync(f('ssh_config'), `Host *\n  ProxyCommand sh -c 'echo "$NODE_EXTRA_CA_CERTS|\${HOIST_DEFERRED_EXTRA_CA_CERTS-unset}" > ${f('seen')}'\n`);
  const ping = spawnSync(BIN, ['ping', '-i', f('inv.toml')], { env: { ...env, HOIST_SSH_CONFIG: f('ssh_config') }, encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(ping.status, 0, ping.stderr);
  assert.equal(readFileSync(f('seen'), 'utf8').trim(), `${f('nope.pem')}|unset`);
});

test('bin/hoist leaves NODE_EXTRA_CA_CERTS to node when another certificate store is picked', () => {
  for (const picked of [{ NODE_OPTIONS: '--use-openssl-ca' }, { NODE_OPTIONS: '--use_openssl_ca' }, { NODE_USE_SYSTEM_CA: '1' }]) {
    const launched = spawnSync(BIN, ['--version'], { env: { ...launcherEnv(), NODE_EXTRA_CA_CERTS: f('nope.pem'), ...picked }, encoding: 'utf8' });
    assert.match(launched.stderr, /Ignoring extra certs from/, JSON.stringify(picked));
  }
});

/** The environment without what picks a certificate store, whatever the machine running the tests sets. */
function launcherEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_USE_SYSTEM_CA;
  return env;
}
