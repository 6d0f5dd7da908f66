import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWith } from '../../src/util/schema.js';
import { ReleaseVersionSchema } from '../../src/modules/containerd/config/version-schema.js';
import { explainMissing } from '../../src/modules/containerd/tasks/artifacts.js';
import { DownloadError } from '../../src/artifacts/download.js';
import { catalogFor } from '../../src/modules/containerd/catalog.js';
import { parseVersion } from '../../src/modules/containerd/version.js';

const schema = new ReleaseVersionSchema('containerd', { '2.1': '2.1.9', '1.7': '1.7.24' });
const msg = (v: unknown) =>
  parseWith(schema, v, ['containerd_version'])
    .issues.map((i) => i.message)
    .join('\n');

test('a version is X.Y.Z; a line, a number or a v-prefix gets an answer that says what to write', () => {
  assert.equal(msg('2.1.9'), '');
  assert.equal(msg('2.4.0-beta.0'), '');
  assert.match(msg(2.1), /^2\.1 \(a number\) names a containerd line, not a release: did you mean 2\.1\.x, e\.g\. "2\.1\.9"\?/);
  assert.match(msg('1.7'), /did you mean 1\.7\.x, e\.g\. "1\.7\.24"\? Known releases: 2\.1\.9, 1\.7\.24/);
  assert.match(msg('v2.1.9'), /must not start with "v" \(write "2\.1\.9"\)/);
  assert.match(msg('latest'), /"latest" is not a containerd version/);
});

test('a release file the mirror lacks names the variable that chose it and how to choose another', () => {
  const arts = catalogFor(parseVersion('2.1.9'), {
    releaseBaseUrl: 'http://mirror.example',
    runcVersion: '1.3.6',
    cniVersion: '1.9.0',
    crictlVersion: '1.30.1',
  });
  const cni = arts.find((a) => a.id === 'cni')!;
  const e = explainMissing(new DownloadError(`GET ${cni.checksumUrl} failed: HTTP 404`, cni.checksumUrl, 404), arts) as Error;
  assert.match(e.message, /cni-plugins-linux-amd64-v1\.9\.0\.tgz is not on the release mirror .*: cni_version chose it; set cni_version to a version/);
  const crictl = arts.find((a) => a.id === 'crictl')!;
  assert.match((explainMissing(new DownloadError('x', crictl.url, 404), arts) as Error).message, /or crictl_version = false to install no crictl/);
  const other = new DownloadError('x', 'http://mirror.example/other', 500);
  assert.equal(explainMissing(other, arts), other, 'anything but a 404 of a known file is left as it was');
});
