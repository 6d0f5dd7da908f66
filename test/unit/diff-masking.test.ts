import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlanState } from '../../src/tasks/types.js';
import { planFile, parseFileProbe } from '../../src/tasks/lib/files.js';
import { sha256 } from '../../src/util/hash.js';
import { validateRuntimeConfig } from '../../src/modules/containerd/config/validate.js';
import { renderAllHostsToml, renderConfig } from '../../src/modules/containerd/render.js';

const opts = { check: false, diff: true, offline: false };

/** The --diff of replacing `before` with `after` at `path`, as planned for a credentials file. */
function secretDiff(path: string, before: string, after: string): string {
  const old = Buffer.from(before);
  const have = parseFileProbe({ out: '', code: 0, file: { exists: true, sha256: sha256(old), mode: 0o600, owner: 'root', group: 'root', content: old } });
  const a = planFile({ path, content: Buffer.from(after), mode: 0o600, secret: true }, have, new PlanState(), opts);
  assert.ok(a?.diff, 'a diff');
  return a.diff;
}

const encodings = (pw: string) => [pw, JSON.stringify(pw).slice(1, -1), Buffer.from(`ci:${pw}`).toString('base64'), encodeURIComponent(pw)];

for (const version of ['1.4.13', '1.7.24', '2.1.9']) {
  test(`containerd ${version}: --diff shows a sandbox_image change and a password change, never a password`, () => {
    const [oldPw, newPw] = ['old-Pw"\\é 1', 'new-Pw$`2'];
    const vars = (sandbox: string, pw: string) => ({
      containerd_version: version,
      sandbox_image: sandbox,
      registries: { 'registry.example:5000': { username: 'ci', password: pw, mirrors: ['https://mirror.example'] } },
    });
    const before = validateRuntimeConfig(vars('registry.k8s.io/pause:3.9', oldPw));
    const after = validateRuntimeConfig(vars('registry.k8s.io/pause:3.10', newPw));
    const files: [string, string, string][] = [['/etc/containerd/config.toml', renderConfig(before).text, renderConfig(after).text]];
    const hostsBefore = renderAllHostsToml(before);
    renderAllHostsToml(after).forEach((h, i) => files.push([h.path, hostsBefore[i].text, h.text]));
    const diffs = files.map(([p, b, a]) => (b === a ? '' : secretDiff(p, b, a))).join('\n');
    assert.match(diffs, /-.*sandbox(_image)? = "registry\.k8s\.io\/pause:3\.9"\n\+.*sandbox(_image)? = "registry\.k8s\.io\/pause:3\.10"/);
    // The credential line is in the diff, changed, with neither value.
    assert.match(diffs, /-\s*(password|Authorization|auth) = "\*\*\* \(secret 1\)"\n\+\s*(password|Authorization|auth) = "\*\*\* \(secret 2\)"/);
    for (const e of [...encodings(oldPw), ...encodings(newPw)]) assert.ok(!diffs.includes(e), `${JSON.stringify(e)} is in the diff:\n${diffs}`);
  });
}

test('an unchanged password is masked alike on both sides: no change shown for it', () => {
  const d = secretDiff('/etc/x.toml', 'a = 1\npassword = "same-Pw"\n', 'a = 2\npassword = "same-Pw"\n');
  assert.match(d, /-a = 1\n\+a = 2/);
  assert.match(d, / password = "\*\*\* \(secret 1\)"/);
  assert.doesNotMatch(d, /same-Pw/);
});

test('a private key shows nothing at all', () => {
  const d = secretDiff('/etc/k.pem', '', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
  assert.doesNotMatch(d, /b3BlbnNzaC1rZXktdjEAAAA/);
  assert.match(d, /content not shown: a private key/);
});
