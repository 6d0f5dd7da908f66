import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceMarkdown } from '../../src/cli/reference.js';
import { taskCatalog } from '../../src/cli/catalog.js';
import { ENVIRONMENT } from '../../src/cli/environment.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('docs/reference.md is what the schemas say today (run `npm run docs` after changing one)', () => {
  const committed = readFileSync(path.join(ROOT, 'docs/reference.md'), 'utf8');
  assert.equal(committed, referenceMarkdown(taskCatalog()));
});

test('every environment variable the code reads is in the reference, and nothing more', () => {
  const read = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/process\.env\.([A-Z_]+)/g)) read.add(m[1]);
    }
  };
  walk(path.join(ROOT, 'src'));
  // The package's command, a shell script, reads some before node starts.
  for (const m of readFileSync(path.join(ROOT, 'bin', 'hoist'), 'utf8').matchAll(/\$\{?([A-Z][A-Z0-9_]*)/g)) read.add(m[1]);
  const documented = new Set(ENVIRONMENT.map((e) => e.name));
  // TERM is read only to spot a dumb terminal, as every terminal program does.
  read.delete('TERM');
  assert.deepEqual([...read].filter((v) => !documented.has(v)).sort(), [], 'read but not documented');
  assert.deepEqual([...documented].filter((v) => !read.has(v)).sort(), [], 'documented but never read');
});
