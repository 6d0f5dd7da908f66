/**
 * The test command (`npm test`): unit tests, then a local fleet of 3 real hosts, the integration
 * tests against it one file at a time (they share the hosts), and the fleet torn down whatever happened.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const only = process.argv.slice(2);

function runTests(files: string[], extra: string[] = []): boolean {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...extra, ...files], {
    cwd: root,
    stdio: 'inherit',
    env: process.env,
  });
  return r.status === 0;
}

const list = (dir: string) =>
  readdirSync(path.join(here, dir))
    .filter((f) => f.endsWith('.test.ts'))
    .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
    .sort()
    .map((f) => path.join('test', dir, f));

let ok = true;
const unit = list('unit');
// Coverage of the unit tests is reported (a table after them), never gated on a number.
if (unit.length) ok = runTests(unit, ['--experimental-test-coverage']) && ok;

const integration = list('integration');
if (integration.length) {
  const fleet = await import('./fleet/fleet.js');
  try {
    await fleet.prepare();
    await fleet.up(3);
    ok = runTests(integration, ['--test-concurrency=1']) && ok;
  } finally {
    await fleet.down();
  }
}
process.exit(ok ? 0 : 1);
