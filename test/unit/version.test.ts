import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareVersions,
  configVersionFor,
  formatVersion,
  isValidReleaseVersion,
  lineOf,
  parseVersion,
  sameCore,
  VersionParseError,
} from '../../src/modules/containerd/version.js';

test('parses release tags, distro builds and prereleases', () => {
  assert.deepEqual(parseVersion('v1.7.34'), { major: 1, minor: 7, patch: 34, prerelease: [], suffix: '', raw: 'v1.7.34' });
  assert.deepEqual(parseVersion('1.7.24~ds1'), { major: 1, minor: 7, patch: 24, prerelease: [], suffix: '~ds1', raw: '1.7.24~ds1' });
  assert.deepEqual(parseVersion('2.1.9+unknown'), { major: 2, minor: 1, patch: 9, prerelease: [], suffix: '+unknown', raw: '2.1.9+unknown' });
  assert.deepEqual(parseVersion('1.6.20~ds1-2'), { major: 1, minor: 6, patch: 20, prerelease: [], suffix: '~ds1-2', raw: '1.6.20~ds1-2' });
  assert.deepEqual(parseVersion('2.0.0-rc.2'), { major: 2, minor: 0, patch: 0, prerelease: ['rc', '2'], suffix: '', raw: '2.0.0-rc.2' });
  assert.deepEqual(parseVersion(' 2.4.0-beta.0+dirty\n').prerelease, ['beta', '0']);
  assert.equal(parseVersion(' 2.4.0-beta.0+dirty\n').suffix, '+dirty');
  // A dash followed by a digit is a Debian/Ubuntu revision, not a prerelease.
  const ubuntu = parseVersion('1.7.12-0ubuntu2~22.04.1');
  assert.deepEqual(ubuntu.prerelease, []);
  assert.equal(ubuntu.suffix, '-0ubuntu2~22.04.1');
});

test('rejects garbage with a clear error', () => {
  for (const bad of ['', 'latest', '1.7', 'v', '1.7.x', '1.7.34garbage', '01.7.3', 'vv1.2.3', '1..2', '1.2.3-', '1.2.3-rc..1']) {
    assert.throws(
      () => parseVersion(bad),
      (e: unknown) => e instanceof VersionParseError && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
});

test('compares by numeric core, prereleases first, suffixes ignored', () => {
  const ordered = [
    '1.4.13',
    '1.6.9',
    '1.6.20~ds1',
    '1.7.24',
    'v1.7.34',
    '2.0.0-beta.0',
    '2.0.0-rc.2',
    '2.0.0-rc.10',
    '2.0.0',
    '2.1.9+unknown',
    '2.3.4',
    '10.0.0',
  ];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      const c = compareVersions(ordered[i], ordered[j]);
      assert.equal(Math.sign(c), Math.sign(i - j), `${ordered[i]} vs ${ordered[j]}`);
    }
  }
  assert.equal(compareVersions('2.0.0-alpha.1', '2.0.0-alpha'), 1);
  assert.equal(compareVersions('2.0.0-alpha.beta', '2.0.0-alpha.1'), 1);
});

test('sameCore ignores prefix and packaging, not prereleases', () => {
  assert.equal(sameCore('v2.1.9', '2.1.9+unknown'), true);
  assert.equal(sameCore('1.6.20~ds1-2', 'v1.6.20'), true);
  assert.equal(sameCore('1.7.34', '1.7.33'), false);
  assert.equal(sameCore('2.0.0-rc.2', '2.0.0'), false);
  assert.equal(sameCore(parseVersion('v2.0.0-rc.2'), '2.0.0-rc.2'), true);
});

test('lineOf and formatVersion', () => {
  assert.equal(lineOf('v1.7.34'), '1.7');
  assert.equal(lineOf('2.1.9+unknown'), '2.1');
  assert.equal(formatVersion('v2.0.0-rc.2'), '2.0.0-rc.2');
  assert.equal(formatVersion('1.6.20~ds1-2'), '1.6.20');
});

test('isValidReleaseVersion is strict', () => {
  for (const ok of ['1.7.34', '2.0.0-rc.2', '2.4.0-beta.0', '0.1.0']) assert.equal(isValidReleaseVersion(ok), true, ok);
  for (const bad of ['v1.7.34', '1.7', '2.1.9+unknown', '1.7.24~ds1', ' 1.7.34', '1.7.34\n', '01.7.34', '1.7.34-', 'latest', '']) {
    assert.equal(isValidReleaseVersion(bad), false, bad);
  }
});

test('configVersionFor maps release lines to config.toml versions', () => {
  assert.equal(configVersionFor('1.4.13'), 2);
  assert.equal(configVersionFor('v1.7.34'), 2);
  assert.equal(configVersionFor('2.0.0-rc.2'), 3);
  assert.equal(configVersionFor('2.1.9+unknown'), 3);
  assert.equal(configVersionFor('2.2.7'), 3);
  assert.equal(configVersionFor('2.3.0'), 4);
  assert.equal(configVersionFor('2.4.0-beta.0'), 4);
  assert.throws(() => configVersionFor('0.2.3'), VersionParseError);
  assert.throws(() => configVersionFor('nope'), VersionParseError);
});
