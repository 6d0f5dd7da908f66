// Bundles the CLI into dist/hoist.js (what `hoist` runs) plus chunks loaded on first use: one
// file's parse instead of a hundred module lookups, and `--version` or `--help` without loading
// the commands. The chunks sit beside dist/paths.js, so `..` of any of them is the package root
// (templates/, playbooks/, package.json) as it is for the compiled files.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist');
for (const f of readdirSync(out)) if (/^hoist(-[A-Z0-9]+)?\.js$/.test(f)) rmSync(path.join(out, f));

await build({
  entryPoints: { hoist: path.join(root, 'src/cli/entry.ts') },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: out,
  chunkNames: 'hoist-[hash]',
  // ssh2's optional native addons: absent, ssh2 falls back to its JavaScript code, as unbundled.
  // undici stays a package of its own (shipped inside hoist's, see bundleDependencies): hoist tells a
  // crash inside the HTTP client from its own by the client's file names in the stack.
  external: ['cpu-features', '*.node', 'undici'],
  // CommonJS dependencies (ssh2, nunjucks) expect require and __dirname.
  banner: {
    js: [
      "import { createRequire as __hoistCreateRequire } from 'node:module';",
      "import { fileURLToPath as __hoistFileURLToPath } from 'node:url';",
      'const require = __hoistCreateRequire(import.meta.url);',
      'const __filename = __hoistFileURLToPath(import.meta.url);',
      "const __dirname = __hoistFileURLToPath(new URL('.', import.meta.url));",
    ].join(' '),
  },
  logLevel: 'warning',
});
