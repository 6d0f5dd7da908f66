// What an adversarial operator or host can do to hoist's output and safety checks, on the real fleet
// through the bastion with sudo: secrets in every encoding, revoked host keys, the host lock, limits,
// control characters.
// Run: HOIST_FLEET_INSTANCE=K node --import tsx --test --test-concurrency=1 test/integration/safety.test.ts
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as fleet from '../fleet/fleet.js';
import { spawn } from 'node:child_process';
import { hoist, hoistJson, HOIST, onHost, ROOT } from '../support/hoist.js';

const PLAYBOOK = path.join(ROOT, 'playbooks', 'containerd.toml');

let info: fleet.FleetInfo;
let dir: string;

before(async () => {
  info = await fleet.info();
  dir = await mkdtemp(path.join(os.tmpdir(), 'hoist-safety-'));
});

async function logOf(stateHome: string): Promise<string> {
  const logs = path.join(stateHome, 'hoist', 'logs');
  return (await Promise.all((await readdir(logs)).map((f) => readFile(path.join(logs, f), 'utf8')))).join('\n');
}

/** The forms a password takes in a config dump, a TOML file, a header, a URL, a shell line. */
function encodings(user: string, pw: string): Record<string, string> {
  const goJson = JSON.stringify(pw)
    .slice(1, -1)
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return {
    raw: pw,
    json: JSON.stringify(pw).slice(1, -1),
    'json, \\u escapes': goJson,
    'base64 user:password': Buffer.from(`${user}:${pw}`).toString('base64'),
    'url-encoded': encodeURIComponent(pw),
    'shell single quotes': pw.replace(/'/g, `'\\''`),
  };
}

describe('secrets', () => {
  test('a changed registry password, old and new, shows in no encoding in -vvv output or the log', async () => {
    const regs = await fleet.registries();
    const rel = info.releases.find((r) => r.line === '1.4') ?? info.releases[0];
    const user = 'hoist-user';
    // Quotes, backslashes, non-ASCII, spaces and $: everything an encoder rewrites.
    const passwords = [`old"pa\\ss wörd$1'x`, `new\\"pw é$(x) 2'"`, `third\\u00e9 "%41+/=`];
    const run = async (pw: string, name: string, ...extra: string[]) => {
      const vars = path.join(dir, `${name}.toml`);
      await writeFile(
        vars,
        `[registries.${JSON.stringify(regs.private.host)}]\nca = ${JSON.stringify(regs.pki.ca)}\nusername = ${JSON.stringify(user)}\npassword = ${JSON.stringify(pw)}\n`,
      );
      const stateHome = path.join(dir, `state-${name}`);
      const r = await hoist(
        [
          'apply',
          PLAYBOOK,
          '-i',
          info.inventoryPath,
          '--limit',
          'h1',
          '--cache-dir',
          path.join(dir, 'cache'),
          '-e',
          `containerd_version="${rel.containerd}"`,
          '-e',
          'allow_downgrade=true',
          '-e',
          `@${vars}`,
          '-vvv',
          ...extra,
        ],
        { XDG_STATE_HOME: stateHome },
      );
      return { r, text: `${r.stdout}\n${r.stderr}\n${await logOf(stateHome)}` };
    };
    const first = await run(passwords[0], 'old');
    assert.ok(first.r.code === 0 || first.r.code === 2, first.r.stderr.slice(-2000));
    // The host shows the credentials back (containerd 1.4's config dump holds them): there was something to redact.
    assert.match(first.text, /password = "\*\*\*"/);
    const second = await run(passwords[1], 'new');
    assert.match(second.text, /password = "\*\*\*"|\*\*\*/);
    // A planned change of password, with its diff, in the --json report too.
    const third = await run(passwords[2], 'third', '--check', '--diff', '--json');
    assert.match(third.r.stdout, /"schemaVersion"/);
    for (const [label, { text }] of [
      ['first run', first],
      ['second run', second],
      ['check --diff --json', third],
    ] as const) {
      for (const pw of passwords) {
        for (const [form, value] of Object.entries(encodings(user, pw))) {
          assert.ok(
            !text.includes(value),
            `${label}: password ${passwords.indexOf(pw) + 1} shows ${form}: ...${text.slice(Math.max(0, text.indexOf(value) - 200), text.indexOf(value) + 50)}`,
          );
        }
      }
    }
  });
});

describe('the host lock', () => {
  /** A playbook whose one change is a root command that runs `seconds` on the host. */
  async function slow(seconds: number): Promise<string> {
    const f = path.join(dir, `slow-${seconds}.toml`);
    await writeFile(f, `name = "slow"\nhosts = "all"\n\n[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "sleep ${seconds}"\n`);
    return f;
  }
  // "[s]leep N": the pattern must not match the command line of the shell that runs pgrep.
  const running = async (seconds: number) =>
    (await onHost(info, 'h1', `pgrep -x -f '[s]leep ${seconds}' >/dev/null && echo yes || echo no`)).out.trim() === 'yes';
  async function until(what: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 150 && !(await what()); i++) await new Promise((r) => setTimeout(r, 100));
  }

  test('without --lock-wait a second run is refused at once, naming the holder; with it, it waits', async () => {
    const first = hoistJson(['apply', await slow(9), '-i', info.inventoryPath, '-l', 'h1']);
    await until(() => running(9));
    const t0 = Date.now();
    const second = await hoistJson(['apply', await slow(1), '-i', info.inventoryPath, '-l', 'h1']);
    const took = Date.now() - t0;
    // Lock contention has its own exit code: a wrapper retries later.
    assert.equal(second.code, 5, JSON.stringify(second.report));
    assert.match(second.report.hosts[0].error ?? '', /h1 is locked by another hoist run \(.+ pid \d+, started .+, playbook slow\); use --lock-wait/);
    assert.ok(took < 6000, `the refusal took ${took} ms: it waited for the first run`);
    const waited = await hoistJson(['apply', await slow(1), '-i', info.inventoryPath, '-l', 'h1', '--lock-wait', '60']);
    assert.equal(waited.code, 0, JSON.stringify(waited.report));
    assert.equal((await first).code, 0);
  });

  test("a killed run's leftover command is stopped with a note, not waited for", async () => {
    const child = spawn(process.execPath, [HOIST, 'apply', await slow(40), '-i', info.inventoryPath, '-l', 'h1'], {
      cwd: ROOT,
      env: { ...process.env, CI: '1' },
      stdio: 'ignore',
    });
    await until(() => running(40));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    assert.ok(await running(40), 'the killed run left no command behind to test with');
    const t0 = Date.now();
    const next = await hoistJson(['apply', await slow(1), '-i', info.inventoryPath, '-l', 'h1']);
    assert.equal(next.code, 0, JSON.stringify(next.report));
    assert.ok(Date.now() - t0 < 25_000, `took ${Date.now() - t0} ms: it waited for the leftover`);
    assert.match(next.report.hosts[0].notes?.join('\n') ?? '', /stopped a command a killed hoist run left running \(pid \d+: bash/);
    assert.equal(await running(40), false);
  });
});

describe('control characters from hosts', () => {
  const RAW = /[\x00\x1b\r]/;

  test('a VERSION_ID with ESC and CR in `hoist facts`, and NUL/ESC/CR in -vvv remote output, are escaped on the terminal and in the log', async () => {
    const stateHome = path.join(dir, 'state-ctl');
    // /etc/os-release is a symlink on Debian: the test replaces it with a file and puts the link back.
    await onHost(
      info,
      'h1',
      `readlink /etc/os-release > /etc/os-release.hoist-test-link; cp --remove-destination "$(readlink -f /etc/os-release)" /etc/os-release && sed -i 's/^VERSION_ID=.*/VERSION_ID="12\\x1b[2J\\r"/' /etc/os-release`,
    );
    try {
      const facts = await hoist(['facts', '-i', info.inventoryPath, '-l', 'h1'], { XDG_STATE_HOME: stateHome });
      assert.equal(facts.code, 0, facts.stderr);
      assert.match(facts.stdout, /12\\x1b\[2J/);
      assert.doesNotMatch(facts.stdout + facts.stderr, RAW);
    } finally {
      await onHost(info, 'h1', 'l=$(cat /etc/os-release.hoist-test-link) && ln -sfn "$l" /etc/os-release && rm /etc/os-release.hoist-test-link');
    }
    const pb = path.join(dir, 'noisy.toml');
    await writeFile(pb, `name = "noisy"\nhosts = "all"\n\n[[tasks]]\ntask = "command"\n[tasks.params]\ncmd = "printf 'a\\\\0b\\\\033[2Jc\\\\rd\\\\n'"\n`);
    const r = await hoist(['apply', pb, '-i', info.inventoryPath, '-l', 'h1', '-vvv'], { XDG_STATE_HOME: stateHome });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /a\\x00b\\x1b\[2Jc\\rd/);
    assert.doesNotMatch(r.stdout + r.stderr, RAW);
    const log = await logOf(stateHome);
    assert.match(log, /a\\x00b\\x1b\[2Jc\\rd/);
    assert.doesNotMatch(log, RAW);
  });
});

describe('sudo', () => {
  test('"Defaults requiretty" is named with the sudoers fix, for deploy and for ops (with a password), and the fix works', async () => {
    const ops = path.join(dir, 'ops.toml');
    await writeFile(
      ops,
      (await readFile(info.inventoryPath, 'utf8')).replace(
        /^user = "deploy"$/m,
        `user = "ops"\nbecome_password_file = ${JSON.stringify(info.opsPasswordFile)}`,
      ),
    );
    await onHost(info, 'h1', 'echo "Defaults requiretty" > /etc/sudoers.d/zz-hoist-test && chmod 440 /etc/sudoers.d/zz-hoist-test');
    try {
      for (const [user, inv] of [
        ['deploy', info.inventoryPath],
        ['ops', ops],
      ]) {
        const r = await hoistJson(['ping', '-i', inv, '-l', 'h1']);
        assert.equal(r.code, 2, JSON.stringify(r.report));
        assert.equal(
          r.report.hosts[0].error,
          `sudo on h1 requires a terminal ("Defaults requiretty" in its sudoers), and hoist runs sudo without one; exempt ${user} with a line "Defaults:${user} !requiretty" in a file under /etc/sudoers.d/ (edit with visudo)`,
        );
      }
      await onHost(info, 'h1', 'echo "Defaults:deploy !requiretty" >> /etc/sudoers.d/zz-hoist-test');
      const fixed = await hoistJson(['ping', '-i', info.inventoryPath, '-l', 'h1']);
      assert.equal(fixed.code, 0, JSON.stringify(fixed.report));
    } finally {
      await onHost(info, 'h1', 'rm -f /etc/sudoers.d/zz-hoist-test');
    }
  });
});

describe('known_hosts', () => {
  test("a @revoked key is refused with OpenSSH's meaning, also with --accept-new-host-keys; the other hosts go on", async () => {
    const h1 = info.hosts.find((h) => h.name === 'h1')!;
    const lines = (await readFile(info.knownHostsPath, 'utf8')).split('\n').filter(Boolean);
    const key = lines
      .find((l) => l.startsWith(`${h1.address} `))!
      .split(' ')
      .slice(1)
      .join(' ');
    const kh = path.join(dir, 'known_hosts-revoked');
    // Listed as h1's key and revoked: the revocation wins, as in OpenSSH.
    await writeFile(kh, `${lines.join('\n')}\n@revoked * ${key}\n@cert-authority *.fleet.test ${key}\n`);
    const r = await hoistJson(['ping', '-i', info.inventoryPath, '--known-hosts', kh, '--accept-new-host-keys', '-l', 'h1,h2', '-v']);
    // A refused host key has its own exit code.
    assert.equal(r.code, 6, JSON.stringify(r.report));
    const [a, b] = r.report.hosts;
    assert.equal(a.status, 'failed');
    assert.match(
      a.error ?? '',
      new RegExp(
        `REVOKED HOST KEY for h1 \\(${h1.address.replace(/\./g, '\\.')}:22\\): it offers ssh-ed25519 SHA256:\\S+, which ${kh.replace(/[/.-]/g, '\\$&')}:${lines.length + 1} marks @revoked`,
      ),
    );
    assert.equal(b.status, 'ok');
    assert.match(r.stderr, new RegExp(`${kh.replace(/[/.-]/g, '\\$&')}:${lines.length + 2}: @cert-authority lines are not supported`));
    // Nothing was recorded for the revoked key.
    assert.equal((await readFile(kh, 'utf8')).split('\n').filter(Boolean).length, lines.length + 2);
  });
});
