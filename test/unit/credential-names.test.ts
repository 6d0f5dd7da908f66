// One list of credential names (util/credential-names.ts) serves four consumers. Each test below
// names, written out, every key the consumer's own list matched before the lists were merged, so
// a word dropped from the shared list fails here, in the consumer that would stop masking it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIG_FIELD_NAMES, CREDENTIAL_WORDS, isCredentialName } from '../../src/util/credential-names.js';
import { isSecretName, maskVariables, redact } from '../../src/util/redact.js';
import { credentialsIn } from '../../src/util/secret-scan.js';
import { lineMasker } from '../../src/util/mask-lines.js';
import { validateRuntimeConfig } from '../../src/modules/containerd/config/validate.js';
import { isSensitiveHeader } from '../../src/modules/containerd/config/registry-credentials.js';
import { renderHostsToml } from '../../src/modules/containerd/render.js';

test('the shared words are the ones every scope masks', () => {
  for (const w of ['password', 'passwd', 'passphrase', 'secret', 'token', 'private_key']) {
    assert.ok(CREDENTIAL_WORDS.includes(w), `${w} is a shared credential word`);
    for (const scope of ['variable', 'header', 'line'] as const)
      assert.ok(isCredentialName(`x_${w}_y`.toUpperCase(), scope), `${scope}: ${w} in any case, anywhere in a name`);
  }
});

test('variables (hoist inventory, the log): every name the old pass/secret/token/auth/private_key rule masked, and only those words', () => {
  // Old rule: /pass(word)?|secret|token|(^|_)auth$|private_key/i
  const masked = [
    'pass',
    'become_pass',
    'password',
    'db_password',
    'PASSWORD',
    'passwd',
    'identity_passphrase',
    'bypass',
    'secret',
    'client_secret',
    'token',
    'api_token',
    'tokens',
    'auth',
    'basic_auth',
    'AUTH',
    'private_key',
    'ssh_private_key_data',
  ];
  for (const name of masked) {
    assert.ok(isSecretName(name), name);
    assert.deepEqual(maskVariables({ [name]: 'plain-value' }), { [name]: '***' }, name);
  }
  // "auth" counts as the whole name or its last word only; keys and paths are no credentials here.
  for (const name of ['author_email', 'auth_method', 'oauth_scope', 'client_key', 'ca', 'username', 'registries', 'identity_file']) {
    assert.ok(!isSecretName(name), name);
    assert.deepEqual(maskVariables({ [name]: 'plain-value' }), { [name]: 'plain-value' }, name);
  }
  // Nested tables are walked: a registry's password inside `registries` is masked by name too.
  assert.deepEqual(maskVariables({ registries: { r: { username: 'ci', password: 'pw-nested' } } }), { registries: { r: { username: 'ci', password: '***' } } });
});

test('mirror headers: every header the old auth/token/cookie/secret/key/password rule flagged makes hosts.toml secret and its value masked', () => {
  // Old rule: /auth|token|cookie|secret|key|password/i; passwd and passphrase are new.
  const flagged = [
    'Authorization',
    'Proxy-Authorization',
    'X-Auth-Token',
    'X-Registry-Auth',
    'X-Token',
    'Cookie',
    'Set-Cookie',
    'X-Secret',
    'X-Api-Key',
    'Key',
    'X-Password',
    'X-Passwd',
    'X-Key-Passphrase',
  ];
  flagged.forEach((name, i) => {
    assert.ok(isSensitiveHeader(name), name);
    const value = `header-value-${i}-Zq9`;
    const cfg = validateRuntimeConfig({
      containerd_version: '2.1.9',
      registries: { 'r.example': { mirrors: [{ url: 'https://m.example', headers: { [name]: value } }] } },
    });
    assert.equal(renderHostsToml('r.example', cfg.registries['r.example'], cfg).secret, true, `${name}: hosts.toml is written 0600`);
    assert.equal(redact(`sent ${value}`), 'sent ***', `${name}: its value is a secret`);
  });
  for (const name of ['Accept', 'X-Request-Id', 'User-Agent']) assert.ok(!isSensitiveHeader(name), name);
});

test("a host's files: every field the old scan read is a credential from then on, and the cheap pre-test lets it through", () => {
  // Old list: password|passwd|auth|identitytoken|identity_token|registrytoken|registry_token|token|secret, matched whole.
  const fields = [
    'password',
    'passwd',
    'auth',
    'identitytoken',
    'identity_token',
    'registrytoken',
    'registry_token',
    'token',
    'secret',
    'IdentityToken',
    'passphrase',
    'private_key',
  ];
  fields.forEach((name, i) => {
    assert.ok(
      CONFIG_FIELD_NAMES.some((f) => f.toLowerCase() === name.toLowerCase()),
      name,
    );
    const value = `found-on-host-${i}-Xy7`;
    assert.deepEqual(credentialsIn(`  ${name} = "${value}"`), [value], `${name} (TOML)`);
    assert.deepEqual(credentialsIn(`{"${name}": "${value}"}`), [value], `${name} (JSON)`);
    // redact() registers what it sees in a config dump before it prints it: the value is masked even alone afterwards.
    assert.equal(redact(`[x]\n${name} = "${value}"`), `[x]\n${name} = "***"`, `${name}: masked where it is read`);
    assert.equal(redact(value), '***', `${name}: and everywhere after`);
  });
  // Matched whole: a field that merely contains a word is not read as a credential.
  assert.deepEqual(credentialsIn('token_url = "https://auth.example/token"\nauth_type = "basic"'), []);
});

test('--diff lines: every key the old line rule masked has its value hidden', () => {
  // Old rule: a key containing password|passwd|auth|authorization|token|secret|private_key.
  const keys = [
    'password',
    'db_password',
    'passwd',
    'auth',
    'auth_type',
    'authorization',
    'Authorization',
    'token',
    'identitytoken',
    'secret',
    'client_secret',
    'private_key',
    'tls_private_key_pem',
    '"password"',
    "'auth'",
    'passphrase',
  ];
  const mask = lineMasker();
  keys.forEach((key, i) => {
    const value = `"line-value-${i}-Qw3"`;
    const out = mask(`  ${key} = ${value}`);
    assert.doesNotMatch(out, /line-value/, key);
    assert.match(out, /\*\*\* \(secret \d+\)/, key);
  });
  assert.equal(mask('  url = "https://m.example"'), '  url = "https://m.example"');
});
