import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify as tomlStringify } from 'smol-toml';
import { addSecret, redact, redactDeep } from '../../src/util/redact.js';
import { printable } from '../../src/util/printable.js';
import { quote } from '../../src/ssh/quote.js';
import { credentialsIn } from '../../src/util/secret-scan.js';

/** A seeded generator, so a failure names a password that can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const POOL = [...'abcXYZ019', '"', '\\', "'", '$', ' ', '`', '%', '+', '/', '=', ':', '&', '<', '>', '{', 'é', 'ü', 'ß', '漢', '😀', '\t', '\n', '#'];

function password(r: () => number): string {
  const n = 8 + Math.floor(r() * 20);
  let p = '';
  for (let i = 0; i < n; i++) p += POOL[Math.floor(r() * POOL.length)];
  return p;
}

const asciiJson = (s: string) => JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
/** Every encoder a secret meets on the way from a host or hoist to output. */
const ENCODERS: Record<string, (pw: string, user: string) => string> = {
  raw: (pw) => pw,
  json: (pw) => JSON.stringify(pw),
  'json ascii (Go, \\u escapes)': (pw) => asciiJson(pw),
  'json in json': (pw) => JSON.stringify(JSON.stringify(pw)),
  'toml basic string': (pw) => tomlStringify({ password: pw }),
  'toml \\U escapes': (pw) => `"${[...pw].map((c) => `\\U${c.codePointAt(0)!.toString(16).padStart(8, '0')}`).join('')}"`,
  'bash ansi-c quote': (pw) => quote(pw),
  'sh single quotes': (pw) => `'${pw.replace(/'/g, `'\\''`)}'`,
  'sh double quotes': (pw) => `"${pw.replace(/["\\$`]/g, '\\$&')}"`,
  'url component': (pw) => encodeURIComponent(pw),
  'url form': (pw) => new URLSearchParams({ p: pw }).toString(),
  'url userinfo': (pw, user) => new URL(`https://${user}:${encodeURIComponent(pw)}@registry.example/`).href,
  printable: (pw) => printable(pw),
  'printable of json': (pw) => printable(JSON.stringify(pw)),
  'base64 user:password': (pw, user) => Buffer.from(`${user}:${pw}`).toString('base64'),
  'base64 password': (pw) => Buffer.from(pw).toString('base64'),
  'basic header in json': (pw, user) => JSON.stringify({ Authorization: [`Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`] }),
};

test('a registered secret is masked in every encoding, for random passwords', () => {
  const r = rng(19);
  for (let i = 0; i < Number(process.env.N ?? 60); i++) {
    const t0 = Date.now();
    const pw = password(r);
    const user = ['u', 'ab', 'bob', 'deploy', 'registry-user'][i % 5];
    addSecret(pw);
    for (const [name, enc] of Object.entries(ENCODERS)) {
      const encoded = enc(pw, user);
      const out = redact(`before ${encoded} after`);
      assert.ok(!out.includes(encoded), `${name} of ${JSON.stringify(pw)} survives: ${out}`);
      assert.match(out, /^before .*\*\*\*.* after$/s, `${name} of ${JSON.stringify(pw)}`);
      assert.ok(!JSON.stringify(redactDeep({ e: encoded })).includes(encoded), `${name} in --json`);
      if (process.env.N) console.error(i, name, Date.now() - t0);
    }
  }
});

test('text without secrets is left alone', () => {
  addSecret('s3cr3t-"quoted"-pw');
  const plain = 'containerd 1.7.24 installed; config dump ok; password rejected for registry.fleet.test:5000 (https://x/y?a=b%20c)';
  assert.equal(redact(plain), plain);
});

test('credentials a host shows are secrets from then on: the old password after it changed', () => {
  const r = rng(8);
  for (let i = 0; i < 40; i++) {
    const old = password(r);
    // A config dump (TOML, Go's escaping) hoist never registered the password of.
    const dump = `[plugins."io.containerd.grpc.v1.cri".registry.configs."r:5000".auth]\n  username = "u"\n  password = ${asciiJson(old)}\n`;
    assert.ok(!redact(dump).includes(asciiJson(old)), `dump shows ${JSON.stringify(old)}`);
    // Later, in another form, elsewhere.
    assert.ok(!redact(`x ${JSON.stringify(old)} y`).includes(JSON.stringify(old)));
    assert.ok(!redact(`x ${encodeURIComponent(old)} y`).includes(encodeURIComponent(old)));
  }
  const token = Buffer.from('someone:an-old-pass-word').toString('base64');
  redact(`[host."https://r:5000".header]\n  Authorization = ["Basic ${token}"]`);
  assert.equal(redact('the password was an-old-pass-word'), 'the password was ***');
});

test('the scanner reads TOML, JSON and header forms, and ignores masked and empty values', () => {
  assert.deepEqual(credentialsIn('password = "a\\"b\\u00e9"'), ['a"bé']);
  assert.deepEqual(credentialsIn(`"password": 'lit\\eral'`), ['lit\\eral']);
  assert.deepEqual(credentialsIn('password = "***"\nauth = ""'), []);
  assert.deepEqual(credentialsIn('Basic setup of the host; auth = none'), []);
  const auth = Buffer.from('me:pa ss').toString('base64');
  assert.deepEqual(credentialsIn(`auth = "${auth}"`), [auth, 'pa ss']);
});
