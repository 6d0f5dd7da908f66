import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, appendFile, rm, readdir, readFile, stat } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { loggingProxy } from '../support/logging-proxy.js';
import { hoist, hoistJson, onHost, changedCount, ROOT } from '../support/hoist.js';

const PLAYBOOK = path.join(ROOT, 'playbooks', 'containerd.toml');
let info: fleet.FleetInfo;
let dir: string;
let cacheDir: string;

/** Test CA, server and client certificates, as an operator would have them on the controller. */
function makeCerts(d: string) {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=hoist test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=hoist client']);
  run(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2']);
}

before(async () => {
  info = await fleet.info();
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-ctd-'));
  cacheDir = path.join(dir, 'cache');
  makeCerts(dir);
  await writeFile(
    path.join(dir, 'registries.toml'),
    `[registries."docker.io"]
mirrors = ["https://mirror.fleet.test:5443"]
[registries."registry.fleet.test:5000"]
ca = "${dir}/ca.pem"
client_cert = "${dir}/client.pem"
client_key = "${dir}/client.key"
[registries."plain.fleet.test:5001"]
insecure_http = true
`,
  );
  await writeFile(
    path.join(dir, 'credentials.toml'),
    `[registries."registry.fleet.test:5000"]\nca = "${dir}/ca.pem"\nclient_cert = "${dir}/client.pem"\nclient_key = "${dir}/client.key"\nusername = "hoist"\npassword = "Registry-Passw0rd-Secret"\n`,
  );
});

// The cache holds every release downloaded: hundreds of MB that must not pile up in /tmp.
after(() => rm(dir, { recursive: true, force: true }));

const applyArgs = (version: string, ...extra: string[]) => [
  'apply',
  PLAYBOOK,
  '-i',
  info.inventoryPath,
  '--cache-dir',
  cacheDir,
  '-e',
  `containerd_version="${version}"`,
  ...(version.startsWith('2.') ? companions(version) : []),
  ...extra,
];

/** 2.x pulls runc and CNI from their own releases: the versions the mirror has (no crictl exists here). */
function companions(version: string): string[] {
  const rel = info.releases.find((r) => r.containerd === version)!;
  return ['-e', 'crictl_version=false', '-e', `runc_version="${rel.runc}"`, '-e', `cni_version="${rel.cni}"`];
}

const mainPid = async (h: string) => (await onHost(info, h, 'systemctl show -p MainPID --value containerd')).out.trim();

describe('containerd bootstrap, per version line the mirror offers', () => {
  before(async () => {
    assert.ok(info.releases.length >= 2, `the mirror offers ${info.releases.map((r) => r.containerd).join(', ')}`);
  });

  for (const line of ['1.4', '1.6', '1.7', '2.1']) {
    test(`containerd ${line}: bare hosts → verified runtime, then a no-op rerun`, async (t) => {
      const rel = info.releases.find((r) => r.line === line);
      if (!rel) return t.skip(`the mirror has no ${line} release`);
      await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
      const v = rel.containerd;
      const first = await hoistJson(applyArgs(v, '-e', `@${dir}/registries.toml`));
      assert.equal(first.code, 0, `${first.stderr}\n${JSON.stringify(first.report, null, 1)}`);
      for (const h of first.report.hosts) {
        assert.equal(h.status, 'changed');
        const verify = h.tasks.find((x) => x.task === 'containerd_verify')!;
        assert.equal(verify.status, 'ok');
        assert.ok(
          verify.notes.some((n) => n.startsWith('server ') && n.includes(v)),
          verify.notes.join('\n'),
        );
        assert.ok(
          verify.notes.some((n) => /^CRI v1(alpha2)?: containerd/.test(n)),
          verify.notes.join('\n'),
        );
      }
      assert.equal((await onHost(info, 'h2', 'systemctl is-active containerd; systemctl is-enabled containerd')).out, 'active\nenabled\n');

      // A real container from the local image.
      execFileSync('scp', [
        '-q',
        '-o',
        'BatchMode=yes',
        '-o',
        `UserKnownHostsFile=${info.knownHostsPath}`,
        '-i',
        info.identityPath,
        info.ociImagePath,
        `root@${info.hosts[0].address}:/tmp/busybox.tar`,
      ]);
      const run = await onHost(
        info,
        'h1',
        `ctr image import /tmp/busybox.tar >/dev/null && ctr run --rm ${info.ociImageName} hoist-t /bin/busybox echo hello-from-${line}`,
      );
      assert.equal(run.out.trim(), `hello-from-${line}`, run.out);

      // Registries are in the effective config: hosts.toml (≥1.5) or registry.mirrors (1.4).
      const dump = (await onHost(info, 'h3', 'containerd config dump')).out;
      if (line === '1.4') {
        assert.match(dump, /registry\.mirrors\."docker\.io"\]\s+endpoint = \["https:\/\/mirror\.fleet\.test:5443"/);
        assert.match(dump, /registry\.configs\."registry\.fleet\.test:5000"\.tls\]/);
      } else {
        assert.match(dump, /config_path = ["']\/etc\/containerd\/certs\.d["']/);
        const files = await onHost(
          info,
          'h3',
          'cd /etc/containerd/certs.d && find . -type f | sort && stat -c "%a %n" registry.fleet.test_5000_/client.key && cat docker.io/hosts.toml plain.fleet.test_5001_/hosts.toml',
        );
        assert.match(files.out, /registry\.fleet\.test_5000_\/ca\.pem/);
        assert.match(files.out, /600 registry\.fleet\.test_5000_\/client\.key/);
        assert.match(files.out, /\[host\."https:\/\/mirror\.fleet\.test:5443"\]/);
        assert.match(files.out, /server = "http:\/\/plain\.fleet\.test:5001"/);
      }

      const pids = await Promise.all(info.hosts.map((h) => mainPid(h.name)));
      const second = await hoistJson(applyArgs(v, '-e', `@${dir}/registries.toml`));
      assert.equal(second.code, 0, second.stderr);
      assert.equal(changedCount(second.report), 0, JSON.stringify(second.report.hosts.map((h) => h.tasks.filter((x) => x.status !== 'ok'))));
      assert.deepEqual(await Promise.all(info.hosts.map((h) => mainPid(h.name))), pids, 'nothing restarted');

      // One changed variable: --check --diff shows exactly it and changes nothing.
      const before = (await onHost(info, 'h1', 'sha256sum /etc/containerd/config.toml')).out;
      const diff = await hoist([...applyArgs(v, '-e', `@${dir}/registries.toml`, '-e', 'oom_score=-500'), '--check', '--diff', '--limit', 'h1']);
      assert.equal(diff.code, 0, diff.stderr);
      assert.match(diff.stdout, /^-oom_score = 0$/m);
      assert.match(diff.stdout, /^\+oom_score = -500$/m);
      assert.equal(diff.stdout.split('\n').filter((l) => /^[+-][^+-]/.test(l)).length, 2, diff.stdout);
      assert.match(diff.stdout, /restart containerd\.service/);
      assert.equal((await onHost(info, 'h1', 'sha256sum /etc/containerd/config.toml')).out, before);

      // Credentials: the file that holds them becomes 0600 and the password shows nowhere.
      const creds = await hoist([...applyArgs(v, '-e', `@${dir}/registries.toml`, '-e', `@${dir}/credentials.toml`), '--diff', '--json', '--limit', 'h1']);
      assert.equal(creds.code, 0, creds.stderr);
      assert.ok(!`${creds.stdout}${creds.stderr}`.includes('Registry-Passw0rd-Secret'), 'password leaked');
      const holder = line.startsWith('2.') ? '/etc/containerd/certs.d/registry.fleet.test_5000_/hosts.toml' : '/etc/containerd/config.toml';
      // Written through sudo by a login user, still root's alone.
      const st = await onHost(
        info,
        'h1',
        `stat -c '%U:%G %a' ${holder}; grep -c -e Registry-Passw0rd-Secret -e "$(printf %s hoist:Registry-Passw0rd-Secret | base64)" ${holder}`,
      );
      assert.equal(st.out, 'root:root 600\n1\n');

      // An installed file changed behind hoist's back is found by its size and mtime and put back.
      const all = ['-e', `@${dir}/registries.toml`, '-e', `@${dir}/credentials.toml`, '--limit', 'h1'];
      await onHost(info, 'h1', 'printf x >> /usr/local/bin/ctr');
      const repair = await hoistJson(applyArgs(v, ...all));
      assert.equal(repair.code, 0, repair.stderr);
      const install = repair.report.hosts[0].tasks.find((x) => x.task === 'containerd_install')!;
      assert.deepEqual(install.changes, [`install containerd ${v} (repair 1 changed file(s): /usr/local/bin/ctr)`]);
      assert.match((await onHost(info, 'h1', 'ctr version')).out, new RegExp(`Version: +v?${v.replace(/\./g, '\\.')}`));
      const clean = await hoistJson(applyArgs(v, ...all));
      assert.equal(changedCount(clean.report), 0, JSON.stringify(clean.report.hosts[0].tasks.filter((x) => x.status !== 'ok')));
    });
  }
});

test('root variant: root logs in directly, the CRI call goes over OpenSSH stream-local forwarding', async () => {
  const rel = info.releases[info.releases.length - 1];
  await fleet.resetHost('h2');
  const args = applyArgs(rel.containerd, '--limit', 'h2').map((a) => (a === info.inventoryPath ? info.rootInventoryPath : a));
  const first = await hoistJson(args);
  assert.equal(first.code, 0, `${first.stderr}\n${JSON.stringify(first.report, null, 1)}`);
  const verify = first.report.hosts[0].tasks.find((x) => x.task === 'containerd_verify')!;
  assert.ok(
    verify.notes.some((n) => /^CRI v1: containerd/.test(n)),
    verify.notes.join('\n'),
  );
  const again = await hoistJson(args);
  assert.equal(changedCount(again.report), 0);
  // The same host converged as root is converged for the sudo user too.
  const viaBastion = await hoistJson(applyArgs(rel.containerd, '--limit', 'h2'));
  assert.equal(viaBastion.code, 0, viaBastion.stderr);
  assert.equal(changedCount(viaBastion.report), 0);
});

describe('refusals', () => {
  before(async () => {
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
  });

  test('a corrupted artifact in the mirror is refused and nothing is installed', async () => {
    const rel = info.releases.find((r) => r.kind === 'bundle')!;
    const asset = `cri-containerd-cni-${rel.containerd}-linux-amd64.tar.gz`;
    const rel_path = path.join('containerd/containerd/releases/download', `v${rel.containerd}`);
    // Fetch the real files, corrupt the tarball, serve the copy.
    const good = path.join(dir, 'good');
    execFileSync('mkdir', ['-p', path.join(good, rel_path)]);
    for (const f of [asset, `${asset}.sha256sum`]) execFileSync('curl', ['-fsS', '-o', path.join(good, rel_path, f), `${info.mirrorUrl}/${rel_path}/${f}`]);
    await appendFile(path.join(good, rel_path, asset), 'tampered');
    const srv = await fleet.serveDir(good);
    try {
      const r = await hoist([
        'apply',
        PLAYBOOK,
        '-i',
        info.inventoryPath,
        '--cache-dir',
        path.join(dir, 'fresh-cache'),
        '-e',
        `containerd_version="${rel.containerd}"`,
        '-e',
        `release_base_url="${srv.url}"`,
      ]);
      // The controller could not prepare the run: 3, not a host failure (2) or bad input (1).
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`${asset.replace(/\./g, '\\.')}`));
      assert.match(r.stderr, /[0-9a-f]{64}[\s\S]*[0-9a-f]{64}/, 'both hashes named');
      assert.equal((await onHost(info, 'h1', 'ls /usr/local/bin/containerd /var/lib/hoist/artifacts 2>&1 | grep -c "No such"')).out.trim(), '2');
    } finally {
      await srv.close();
    }
  });

  test('invalid input is refused before any host is touched', async () => {
    const cases: [string[], RegExp][] = [
      [['-e', 'containerd_verison="1.7.24"'], /unknown variable "containerd_verison".*did you mean "containerd_version"/],
      [['-e', 'containerd_version="1.7"'], /containerd_version.*"1\.7" names a containerd line, not a release: did you mean 1\.7\.x/],
      [
        ['-e', 'containerd_version="1.7.24"', '-e', 'registries={ "docker.io" = { mirrors = ["mirror.local"] } }'],
        /registries\.docker\.io\.mirrors\[0\].*no scheme/,
      ],
      [['-e', 'containerd_version="1.7.24"', '-e', 'registries={ "r.example:5000" = { ca = "/nonexistent/ca.pem" } }'], /\/nonexistent\/ca\.pem not found/],
      [['-e', 'containerd_version="1.7.24"', '-e', 'release_base_url="mirror.local"'], /release_base_url "mirror\.local" has no scheme/],
    ];
    for (const [args, re] of cases) {
      const r = await hoist(['apply', PLAYBOOK, '-i', info.inventoryPath, '--cache-dir', cacheDir, ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.equal((await onHost(info, 'h1', 'ls /var/lib/hoist 2>&1 | grep -c "No such"')).out.trim(), '1');
  });

  test('a reset pointed at a system directory is refused by variable before any host is touched', async () => {
    const reset = path.join(ROOT, 'playbooks', 'reset.toml');
    const inv = path.join(dir, 'root-dir-slash.toml');
    await writeFile(inv, (await readFile(info.inventoryPath, 'utf8')).replace('[defaults.vars]\n', '[defaults.vars]\nroot_dir = "/"\n'));
    const cases: [string[], RegExp][] = [
      [['-i', info.inventoryPath, '-e', 'state_dir=/etc'], /-e state_dir=… \(state_dir\): "\/etc" is a system directory/],
      [['-i', inv], /root-dir-slash\.toml:\d+ \(root_dir\): "\/" is a system directory.*\(set in inventory defaults\)/],
    ];
    for (const [args, re] of cases) {
      const r = await hoist(['apply', reset, '--yes', '-e', 'remove_data=true', '-e', 'containerd_version="1.7.24"', ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.equal((await onHost(info, 'h1', 'ls -d /etc/hostname /etc/systemd')).out, '/etc/hostname\n/etc/systemd\n');
  });

  test('a distribution containerd is detected and left alone unless replacing is asked for', async () => {
    const rel = info.releases.find((r) => r.line === '1.7') ?? info.releases[0];
    const inst = await onHost(
      info,
      'h2',
      'export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && apt-get install -y -q containerd >/dev/null 2>&1; dpkg -s containerd | grep Status',
    );
    assert.match(inst.out, /install ok installed/);
    const r = await hoistJson([...applyArgs(rel.containerd), '--limit', 'h2']);
    assert.equal(r.code, 2);
    assert.match(r.report.hosts[0].error!, /distribution containerd is installed \(containerd\)/);
    const ok = await hoistJson([...applyArgs(rel.containerd, '-e', 'replace_distro_containerd=true'), '--limit', 'h2']);
    assert.equal(ok.code, 0, JSON.stringify(ok.report));
    assert.match((await onHost(info, 'h2', 'dpkg -s containerd 2>&1 | head -2')).out, /not installed|deinstall/);
  });
});

describe('download modes and config safety', () => {
  before(async () => {
    await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
  });

  test('download = "host" behind HTTP_PROXY: each host fetches from its mirror address through the proxy and checks the same sha256', async () => {
    const rel = info.releases.find((r) => r.line === '1.7') ?? info.releases[0];
    // The proxy listens where the hosts reach the controller (the controller's own downloads through a
    // proxy are tested in test/unit/download.test.ts; here its checksums may already be cached).
    const proxy = await loggingProxy(new URL(info.mirrorUrlForHosts).hostname);
    try {
      const r = await hoistJson(applyArgs(rel.containerd, '-e', 'download="host"', '--limit', 'h1'), { HTTP_PROXY: proxy.url, NO_PROXY: '' });
      assert.equal(r.code, 0, JSON.stringify(r.report, null, 1));
      const tasks = r.report.hosts[0].tasks;
      assert.match(tasks.find((t) => t.task === 'containerd_artifacts')!.changes.join(), /download cri-containerd-cni-.* on the host/);
      assert.ok((r.report.hosts[0] as { bytesPushed?: number }).bytesPushed! < 1_000_000, 'the archive was not pushed from the controller');
      const bundle = `cri-containerd-cni-${rel.containerd}-linux-amd64.tar.gz`;
      assert.ok(
        proxy.log.some((l) => l.startsWith(`GET ${info.mirrorUrlForHosts}/`) && l.endsWith(`/${bundle}`)),
        `the host's download did not pass the proxy: ${proxy.log.join(', ')}`,
      );
    } finally {
      await proxy.close();
    }
  });

  test('hoist fetch fills the cache for an --offline run; an offline run without it names the missing artifact', async () => {
    const rel = info.releases.find((r) => r.line === '1.6') ?? info.releases[0];
    const offlineCache = path.join(dir, 'offline-cache');
    const miss = await hoist([
      'apply',
      PLAYBOOK,
      '-i',
      info.inventoryPath,
      '--limit',
      'h2',
      '--offline',
      '--cache-dir',
      offlineCache,
      '-e',
      `containerd_version="${rel.containerd}"`,
    ]);
    assert.equal(miss.code, 3);
    assert.match(miss.stderr, new RegExp(`cri-containerd-cni-${rel.containerd.replace(/\./g, '\\.')}-linux-amd64\\.tar\\.gz`));
    assert.match(miss.stderr, /hoist fetch/);
    const fetched = await hoist(['fetch', '--cache-dir', offlineCache, '-i', info.inventoryPath, '-e', `containerd_version="${rel.containerd}"`]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stdout, /fetched cri-containerd-cni-.* sha256:[0-9a-f]{64}/);
    const ok = await hoistJson([
      'apply',
      PLAYBOOK,
      '-i',
      info.inventoryPath,
      '--limit',
      'h2',
      '--offline',
      '--cache-dir',
      offlineCache,
      '-e',
      `containerd_version="${rel.containerd}"`,
    ]);
    assert.equal(ok.code, 0, JSON.stringify(ok.report.hosts[0]));
    // A damaged blob is not "missing": it is named corrupt, with both digests and the fix.
    const blobs = path.join(offlineCache, 'sha256');
    const sizes = await Promise.all((await readdir(blobs)).map(async (b) => ({ b, size: (await stat(path.join(blobs, b))).size })));
    const archive = sizes.sort((x, y) => y.size - x.size)[0].b;
    await appendFile(path.join(blobs, archive), 'bit rot');
    const corrupt = await hoist([
      'apply',
      PLAYBOOK,
      '-i',
      info.inventoryPath,
      '--limit',
      'h2',
      '--offline',
      '--cache-dir',
      offlineCache,
      '-e',
      `containerd_version="${rel.containerd}"`,
    ]);
    assert.equal(corrupt.code, 3, corrupt.stderr);
    assert.match(
      corrupt.stderr,
      new RegExp(
        `cri-containerd-cni-\\S+ in the cache \\S+ is corrupt: expected sha256 ${archive} \\(as verified when it was cached\\), got [0-9a-f]{64}; it was removed from the cache\\. Run \`hoist fetch\``,
      ),
    );
    assert.doesNotMatch(corrupt.stderr, /not in the cache/);
  });

  test('a registry taken out of the playbook is removed from the host', async () => {
    const rel = info.releases.find((r) => r.line === '1.7') ?? info.releases[0];
    assert.equal((await hoistJson(applyArgs(rel.containerd, '-e', `@${dir}/registries.toml`, '--limit', 'h3'))).code, 0);
    assert.match((await onHost(info, 'h3', 'ls /etc/containerd/certs.d')).out, /registry\.fleet\.test_5000_/);
    const r = await hoistJson(applyArgs(rel.containerd, '--limit', 'h3'));
    assert.equal(r.code, 0, JSON.stringify(r.report.hosts[0]));
    assert.match(
      r.report.hosts[0].tasks.find((t) => t.task === 'containerd_registries')!.changes.join(),
      /remove 6 file\(s\) of registries no longer configured/,
    );
    assert.equal((await onHost(info, 'h3', 'ls /etc/containerd/certs.d 2>/dev/null | wc -l')).out.trim(), '0');
    assert.equal(changedCount((await hoistJson(applyArgs(rel.containerd, '--limit', 'h3'))).report), 0);
  });

  test('a config the installed containerd rejects is refused and the live one is kept', async () => {
    const rel = info.releases.find((r) => r.line === '1.7') ?? info.releases[0];
    assert.equal((await hoistJson(applyArgs(rel.containerd, '--limit', 'h3'))).code, 0);
    const before = (await onHost(info, 'h3', 'sha256sum /etc/containerd/config.toml')).out;
    await onHost(info, 'h3', `printf 'oom_score = "not a number"\\n' > /etc/containerd/conf.d/50-broken.toml`);
    try {
      const r = await hoistJson(applyArgs(rel.containerd, '-e', 'oom_score=-100', '--limit', 'h3'));
      assert.equal(r.code, 2);
      assert.match(r.report.hosts[0].error!, /config\.toml was refused; the old one is still in place/);
      assert.equal((await onHost(info, 'h3', 'sha256sum /etc/containerd/config.toml')).out, before);
      assert.equal((await onHost(info, 'h3', 'ls -a /etc/containerd | grep -c hoist-')).out.trim(), '0', 'no staged file left behind');
    } finally {
      await onHost(info, 'h3', 'rm -f /etc/containerd/conf.d/50-broken.toml');
    }
  });
});
