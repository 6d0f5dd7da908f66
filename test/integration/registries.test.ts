// Registry mirrors and private registries proven by real pulls through containerd's CRI plugin, against
// the fleet's three real registries (HTTPS mirror, mTLS + basic-auth private registry, plain HTTP),
// for containerd 1.4 (legacy registry.mirrors/configs), a 1.x bundle with hosts.toml, and 2.1.
// Run: HOIST_FLEET_INSTANCE=K npx tsx --test --test-concurrency=1 test/integration/registries.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { removePodSandbox, runPodSandbox, stopPodSandbox } from '../support/cri-rpcs.js';
import { withFleetCri } from '../support/cri-forward.js';
import { hoistJson, onHost, ROOT, type JsonReport } from '../support/hoist.js';

const PLAYBOOK = path.join(ROOT, 'playbooks', 'containerd.toml');
/** Where containerd would go for docker.io without a mirror; the test points the name at a trap. */
const UPSTREAM = 'registry-1.docker.io';

let info: fleet.FleetInfo;
let regs: fleet.FleetRegistries;
let dir: string;
let cacheDir: string;
let stateHome: string;
let secrets: string[];
const trapHits: string[] = [];
const traps: Server[] = [];

const MIRRORED = 'docker.io/library/busybox:1';
const NOT_IN_MIRROR = 'docker.io/library/not-in-the-mirror:1';
let privateImage: string;
let pauseImage: string;
let plainImage: string;

function toml(s: string): string {
  return JSON.stringify(s);
}

/** One registries configuration, as an operator writes it; `priv` holds the private registry's keys. */
function varsFile(priv: Record<string, string>, opts: { plain: boolean }): string {
  const lines = [
    `sandbox_image = ${toml(pauseImage)}`,
    '[registries."docker.io"]',
    `mirrors = [{ url = ${toml(regs.mirror.url)}, ca = ${toml(regs.pki.ca)} }]`,
    `[registries.${toml(regs.private.host)}]`,
    ...Object.entries(priv).map(([k, v]) => `${k} = ${toml(v)}`),
  ];
  if (opts.plain) lines.push(`[registries.${toml(regs.plain.host)}]`, 'insecure_http = true');
  return `${lines.join('\n')}\n`;
}

function privateVars(over: Record<string, string | undefined> = {}): Record<string, string> {
  const full: Record<string, string | undefined> = {
    ca: regs.pki.ca,
    client_cert: regs.pki.clientCert,
    client_key: regs.pki.clientKey,
    username: regs.private.username,
    password: regs.private.password,
    ...over,
  };
  return Object.fromEntries(Object.entries(full).filter((e): e is [string, string] => e[1] !== undefined));
}

/** A private registry set up with exactly one thing missing or wrong, and what hoist must say about it. */
const VARIANTS: { name: string; over: Record<string, string | undefined>; expect: RegExp }[] = [
  { name: 'no-ca', over: { ca: undefined }, expect: /CA not trusted: .*set registries\."registry\.fleet\.test:5000"\.ca/ },
  {
    name: 'no-client-cert',
    over: { client_cert: undefined, client_key: undefined },
    expect: /client certificate rejected or missing: .*none is configured; set registries\."registry\.fleet\.test:5000"\.client_cert and client_key/,
  },
  {
    name: 'no-credentials',
    over: { username: undefined, password: undefined },
    expect: /credentials rejected or missing: .*none is configured; set registries\."registry\.fleet\.test:5000"\.username and password/,
  },
  { name: 'wrong-ca', over: {}, expect: /CA not trusted: .*not signed by the configured CA \(registries\."registry\.fleet\.test:5000"\.ca = other-ca\.pem\)/ },
  {
    name: 'wrong-client-cert',
    over: {},
    expect:
      /client certificate rejected or missing: .*refused the configured client certificate \(registries\."registry\.fleet\.test:5000"\.client_cert = other-client\.pem\)/,
  },
  { name: 'wrong-password', over: {}, expect: /credentials rejected or missing: .*refused the configured credentials/ },
];

before(async () => {
  info = await fleet.info();
  regs = await fleet.registries();
  privateImage = `${regs.private.host}/hoist/busybox:1`;
  pauseImage = `${regs.private.host}/hoist/pause:1`;
  plainImage = `${regs.plain.host}/hoist/busybox:1`;
  assert.deepEqual(regs.mirror.images, [MIRRORED]);
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-reg-'));
  cacheDir = path.join(dir, 'cache');
  stateHome = path.join(dir, 'state');
  const wrong: Record<string, Record<string, string | undefined>> = {
    'wrong-ca': { ca: regs.pki.otherCa },
    'wrong-client-cert': { client_cert: regs.pki.otherClientCert, client_key: regs.pki.otherClientKey },
    'wrong-password': { password: 'not-the-registry-password' },
  };
  for (const v of VARIANTS) await writeFile(path.join(dir, `${v.name}.toml`), varsFile(privateVars({ ...v.over, ...wrong[v.name] }), { plain: false }));
  await writeFile(path.join(dir, 'good.toml'), varsFile(privateVars(), { plain: true }));
  await writeFile(path.join(dir, 'no-plain.toml'), varsFile(privateVars(), { plain: false }));
  const keyBody = (await readFile(regs.pki.clientKey, 'utf8')).split('\n').filter((l) => l && !l.startsWith('-----'));
  const basic = Buffer.from(`${regs.private.username}:${regs.private.password}`).toString('base64');
  secrets = [regs.private.password, basic, ...keyBody];
  assert.ok(keyBody.length > 0 && regs.private.password.length >= 16);

  // The upstream name resolves to a listener on each gateway that records every connection: pulls
  // through the mirror must never reach it.
  await Promise.all(
    info.hosts.map(
      (h) =>
        new Promise<void>((resolve, reject) => {
          const srv = createServer((sock: Socket) => {
            trapHits.push(sock.remoteAddress ?? '?');
            sock.destroy();
          });
          srv.once('error', reject);
          srv.listen({ host: h.gateway, port: 443, exclusive: true }, () => resolve());
          traps.push(srv);
        }),
    ),
  );
});

after(async () => {
  await Promise.all(traps.map((s) => new Promise((r) => s.close(r))));
  // The artifact cache in here is a few hundred MB.
  if (dir) await rm(dir, { recursive: true, force: true });
});

const env = () => ({ XDG_STATE_HOME: stateHome });

function companions(version: string): string[] {
  if (!version.startsWith('2.')) return [];
  const rel = info.releases.find((r) => r.containerd === version)!;
  return ['-e', 'crictl_version=false', '-e', `runc_version="${rel.runc}"`, '-e', `cni_version="${rel.cni}"`];
}

const apply = (version: string, vars: string, ...extra: string[]) =>
  hoistJson(
    [
      'apply',
      PLAYBOOK,
      '-i',
      info.inventoryPath,
      '--cache-dir',
      cacheDir,
      '-e',
      `containerd_version="${version}"`,
      ...companions(version),
      '-e',
      `@${path.join(dir, vars)}`,
      ...extra,
    ],
    env(),
  );

const verify = (version: string, vars: string, images: string[], ...extra: string[]) =>
  hoistJson(
    [
      'verify',
      PLAYBOOK,
      '-i',
      info.inventoryPath,
      '-e',
      `containerd_version="${version}"`,
      ...companions(version),
      '-e',
      `@${path.join(dir, vars)}`,
      ...images.flatMap((i) => ['--pull-test', i]),
      ...extra,
    ],
    env(),
  );

function verifyTask(report: JsonReport, host: string) {
  const h = report.hosts.find((x) => x.name === host);
  assert.ok(h, `no ${host} in the report`);
  const t = h.tasks.find((x) => x.task === 'containerd_verify');
  assert.ok(t, `${host}: no verify task in ${JSON.stringify(h)}`);
  return t;
}

function assertNoSecret(where: string, text: string): void {
  for (const s of secrets) assert.ok(!text.includes(s), `${where} shows a secret (${s.slice(0, 4)}…)`);
}

async function logText(): Promise<string> {
  const logs = path.join(stateHome, 'hoist', 'logs');
  const files = await readdir(logs);
  assert.ok(files.length > 0, 'hoist wrote no log file');
  return (await Promise.all(files.map((f) => readFile(path.join(logs, f), 'utf8')))).join('\n');
}

/**
 * hoist's CRI client over a forward of the test's own, independent of hoist's SSH layer: OpenSSH
 * forwards a local socket to the host's containerd socket (strict host-key checking, the fleet's key).
 */
async function fileSize(f: string): Promise<number> {
  return (await stat(f)).size;
}

async function linesSince(f: string, offset: number): Promise<string[]> {
  return (await readFile(f)).subarray(offset).toString('utf8').split('\n').filter(Boolean);
}

for (const line of ['1.4', '1.6', '1.7', '2.1']) {
  describe(`containerd ${line} against real registries`, { concurrency: false }, () => {
    let version = '';
    before(async () => {
      const rel = info.releases.find((r) => r.line === line);
      assert.ok(rel, `the mirror has no ${line} release: ${info.releases.map((r) => r.containerd).join(', ')}`);
      version = rel.containerd;
      await Promise.all(info.hosts.map((h) => fleet.resetHost(h.name)));
      for (const h of info.hosts) {
        const r = await onHost(info, h.name, `echo ${h.gateway} ${UPSTREAM} >> /etc/hosts`);
        assert.equal(r.code, 0, r.out);
      }
    });

    test('rollout: mirror, private registry (CA + client cert + credentials) and plain http configured by hoist; secrets stay hidden', async () => {
      assert.ok(version, `no ${line} release`);
      // h3 never gets the plain registry configured: its pull must fail.
      const first = await apply(version, 'no-plain.toml', '--diff');
      assert.equal(first.code, 0, `${first.stderr}\n${JSON.stringify(first.report, null, 1)}`);
      const second = await apply(version, 'good.toml', '--diff', '--limit', 'h1,h2');
      assert.equal(second.code, 0, `${second.stderr}\n${JSON.stringify(second.report, null, 1)}`);
      for (const r of [first, second]) {
        assertNoSecret('apply stdout (--json --diff)', r.stdout);
        assertNoSecret('apply stderr', r.stderr);
      }
      // Files holding the password or the client key are private to root.
      const holder = line.startsWith('2.') ? '/etc/containerd/certs.d/registry.fleet.test_5000_/hosts.toml' : '/etc/containerd/config.toml';
      const pw = regs.private.password;
      const basic = Buffer.from(`${regs.private.username}:${pw}`).toString('base64');
      const modes = await onHost(
        info,
        'h1',
        `stat -c '%a %n' ${holder} /etc/containerd/certs.d/registry.fleet.test_5000_/client.key; grep -c -e ${pw} -e ${basic} ${holder}`,
      );
      assert.equal(modes.out, `600 ${holder}\n600 /etc/containerd/certs.d/registry.fleet.test_5000_/client.key\n1\n`);
      if (line === '1.4') {
        // No config_path: the legacy form in config.toml carries mirrors, TLS and credentials.
        const dump = (await onHost(info, 'h1', 'containerd config dump')).out;
        assert.match(dump, /registry\.mirrors\."docker\.io"\]\s+endpoint = \["https:\/\/mirror\.fleet\.test:5443", "https:\/\/registry-1\.docker\.io"\]/);
        assert.match(dump, /registry\.configs\."registry\.fleet\.test:5000"\.tls\]/);
        assert.match(dump, /registry\.mirrors\."plain\.fleet\.test:5001"\]\s+endpoint = \["http:\/\/plain\.fleet\.test:5001"\]/);
        assert.doesNotMatch(dump, /config_path = "\/etc/);
      }
    });

    test('CRI pulls: through the mirror (upstream never contacted), private registry, sandbox image, plain http only where insecure', async () => {
      assert.ok(version);
      const mirrorAt = await fileSize(regs.mirror.accessLog);
      const privateAt = await fileSize(regs.private.accessLog);
      const trapsBefore = trapHits.length;
      const r = await verify(version, 'good.toml', [MIRRORED, privateImage, pauseImage, plainImage], '--limit', 'h1,h2');
      assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.report, null, 1)}`);
      for (const h of ['h1', 'h2']) {
        const notes = verifyTask(r.report, h).notes;
        for (const img of [MIRRORED, privateImage, pauseImage, plainImage])
          assert.ok(
            notes.some((n) => n.startsWith(`pull ${img}: ok (sha256:`)),
            `${h}: ${notes.join('\n')}`,
          );
        // The sandbox image is the private one, in the config containerd actually runs with.
        assert.ok(
          notes.some((n) => n.includes(`sandbox ${pauseImage}`)),
          notes.join('\n'),
        );
        const ctrNotes = notes.filter((n) => / with ctr \(same hosts\.toml\): /.test(n));
        if (line === '1.4') assert.deepEqual(ctrNotes, []);
        else assert.equal(ctrNotes.length, 4, notes.join('\n'));
      }
      assertNoSecret('verify --json', r.stdout);
      const mirrorLines = await linesSince(regs.mirror.accessLog, mirrorAt);
      for (const h of info.hosts.filter((x) => x.name !== 'h3')) {
        const mine = mirrorLines.filter((l) => l.startsWith(`${h.address} `));
        assert.ok(
          mine.some((l) => /"(HEAD|GET) \/v2\/library\/busybox\/manifests\/1(\?ns=docker\.io)? HTTP\/[\d.]+" 200 .*"containerd\//.test(l)),
          `${h.name} never asked the mirror:\n${mirrorLines.join('\n')}`,
        );
        assert.ok(
          mine.some((l) => /"GET \/v2\/library\/busybox\/blobs\/sha256:[0-9a-f]{64}(\?ns=docker\.io)? HTTP\/[\d.]+" 200/.test(l)),
          `${h.name} fetched no layer from the mirror`,
        );
      }
      assert.equal(trapHits.length, trapsBefore, `the upstream ${UPSTREAM} was contacted: ${trapHits.slice(trapsBefore).join(', ')}`);
      const privateLines = await linesSince(regs.private.accessLog, privateAt);
      assert.ok(
        privateLines.some((l) => l.startsWith(`${info.hosts[0].address} `) && /"HEAD \/v2\/hoist\/pause\/manifests\/1 HTTP\/[\d.]+" 200/.test(l)),
        privateLines.join('\n'),
      );
      const dump = (await onHost(info, 'h2', 'containerd config dump')).out;
      assert.match(
        dump,
        line.startsWith('2.') ? /sandbox = ["']registry\.fleet\.test:5000\/hoist\/pause:1["']/ : /sandbox_image = "registry\.fleet\.test:5000\/hoist\/pause:1"/,
      );

      // The trap is live: an image the mirror lacks falls through to the upstream name.
      const miss = await verify(version, 'good.toml', [NOT_IN_MIRROR], '--limit', 'h1');
      assert.notEqual(miss.code, 0);
      assert.ok(trapHits.slice(trapsBefore).includes(info.hosts[0].address), `fallback to ${UPSTREAM} not seen by the trap`);

      // h3 has no insecure_http for the plain registry: that pull fails and says why; the others work there.
      const h3 = await verify(version, 'no-plain.toml', [MIRRORED, privateImage, plainImage], '--limit', 'h3');
      assert.notEqual(h3.code, 0);
      const t = verifyTask(h3.report, 'h3');
      assert.match(
        t.error ?? '',
        /pull plain\.fleet\.test:5001\/hoist\/busybox:1: registry speaks plain HTTP: .*set registries\."plain\.fleet\.test:5001"\.insecure_http = true/,
      );
      assert.doesNotMatch(t.error ?? '', /pull (docker\.io|registry\.fleet)/);
      assert.ok(
        t.notes.some((n) => n.startsWith(`pull ${privateImage}: ok`)),
        t.notes.join('\n'),
      );
      assertNoSecret('hoist log file', await logText());
    });

    test('a pod sandbox makes containerd pull the configured sandbox image itself, from the private registry', async () => {
      assert.ok(version);
      const h = info.hosts[0];
      // Every name of the image (tag and the digest reference CRI adds), so containerd must resolve it again.
      const gone = await onHost(
        info,
        h.name,
        'for r in $(ctr -n k8s.io image ls -q | grep hoist/pause); do ctr -n k8s.io image rm "$r" >/dev/null 2>&1; done; ctr -n k8s.io image ls -q | grep -c hoist/pause',
      );
      assert.match(gone.out, /^0$/m, gone.out);
      const at = await fileSize(regs.private.accessLog);
      // kubelet never pulls the sandbox image: RunPodSandbox does, with the CRI plugin's registry settings.
      const outcome = await withFleetCri(info, h.name, async (c) => {
        try {
          const id = await runPodSandbox(c, {
            name: 'hoist-sandbox-check',
            uid: `hoist-${Date.now()}`,
            namespace: 'hoist',
            hostNetwork: true,
            cgroupParent: 'hoist.slice',
          });
          await stopPodSandbox(c, id);
          await removePodSandbox(c, id);
          return 'started';
        } catch (e) {
          return (e as Error).message;
        }
      });
      // Starting the sandbox's container can fail inside these nspawn hosts (runc cannot set up its
      // process there); what matters here is that the image step before it succeeded.
      if (outcome !== 'started') {
        // Word boundaries: the sandbox id in the message is hex and may hold "401" by chance.
        assert.doesNotMatch(outcome, /\b(pull|resolve|image|x509|tls|401|unauthorized|auth)/i, outcome);
        assert.match(outcome, /failed to (create containerd task|start sandbox)/, outcome);
      }
      const lines = (await linesSince(regs.private.accessLog, at)).filter((l) => l.startsWith(`${h.address} `));
      assert.ok(
        lines.some((l) => /"(HEAD|GET) \/v2\/hoist\/pause\/manifests\/1 HTTP\/[\d.]+" 200 .*"containerd\//.test(l)),
        lines.join('\n'),
      );
      const ls = await onHost(info, h.name, 'ctr -n k8s.io image ls -q');
      assert.ok(ls.out.split('\n').includes(pauseImage), ls.out);
    });

    test('ctr with --hosts-dir pulls with the same hosts.toml', async (t) => {
      if (line === '1.4') return t.skip('containerd 1.4 has no hosts.toml');
      const r = await verify(version, 'good.toml', [MIRRORED, privateImage, plainImage], '--limit', 'h2');
      assert.equal(r.code, 0, JSON.stringify(r.report, null, 1));
      const notes = verifyTask(r.report, 'h2').notes;
      const privateAt = await fileSize(regs.private.accessLog);
      for (const img of [MIRRORED, privateImage, plainImage]) {
        const note = notes.find((n) => n.startsWith(`pull ${img} with ctr (same hosts.toml): `));
        assert.ok(note, notes.join('\n'));
        let cmd = note.replace(/^.*?: (ctr .*?)( \(asks for the password.*)?$/, '$1');
        assert.match(cmd, /^ctr -n k8s\.io image pull --hosts-dir \/etc\/containerd\/certs\.d /);
        // 1.x keeps credentials out of hosts.toml: ctr asks for the password, given here on the command line.
        if (cmd.includes(' --user ')) cmd = cmd.replace(`--user ${regs.private.username}`, `--user ${regs.private.username}:${regs.private.password}`);
        const run = await onHost(info, 'h2', `ctr -n k8s.io image rm ${img} >/dev/null 2>&1; ${cmd} >/tmp/ctr.out 2>&1; rc=$?; tail -3 /tmp/ctr.out; exit $rc`);
        assert.equal(run.code, 0, `${cmd}:\n${run.out}`);
      }
      const lines = await linesSince(regs.private.accessLog, privateAt);
      assert.ok(
        lines.some((l) => l.startsWith(`${info.hosts[1].address} `) && /manifests\/1 HTTP\/[\d.]+" 200/.test(l)),
        lines.join('\n'),
      );
    });

    test('one setting missing or wrong: the pull fails and verify names it', async () => {
      assert.ok(version);
      // Three hosts at a time, one variant each.
      for (let i = 0; i < VARIANTS.length; i += info.hosts.length) {
        const round = VARIANTS.slice(i, i + info.hosts.length).map((v, j) => ({ v, host: info.hosts[j].name }));
        const applied = await Promise.all(round.map(({ v, host }) => apply(version, `${v.name}.toml`, '--limit', host)));
        applied.forEach((a, j) => assert.equal(a.code, 0, `${round[j].v.name}: ${a.stderr}\n${JSON.stringify(a.report, null, 1)}`));
        const checked = await Promise.all(round.map(({ v, host }) => verify(version, `${v.name}.toml`, [privateImage], '--limit', host)));
        checked.forEach((c, j) => {
          const { v, host } = round[j];
          assert.notEqual(c.code, 0, `${v.name} on ${host}: the pull should fail`);
          const err = verifyTask(c.report, host).error ?? '';
          assert.match(err, v.expect, `${v.name} on ${host}:\n${err}`);
          assertNoSecret(`verify (${v.name})`, `${c.stdout}${c.stderr}`);
        });
      }
      assertNoSecret('hoist log file', await logText());
    });
  });
}
