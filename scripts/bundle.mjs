// Bundles the CLI for the package:
// - dist/hoist.cjs, what `hoist` runs: a small entry that answers `--version` itself and otherwise runs
// - dist/hoist-cli.cjs, the whole CLI in one CommonJS file (every dependency but undici inlined),
//   through V8's code cache (src/cli/code-cache.ts). One file's compile instead of a hundred module
//   lookups, and no compile at all once the cache holds it; commands are still evaluated only when one
//   runs (esbuild wraps what is imported lazily in an init function).
// Both sit beside dist/paths.js, so `..` of them is the package root (templates/, playbooks/,
// package.json) as it is for the compiled files. The single executable (scripts/sea.mjs) is the same
// two files: the entry as its main script, the bundle unpacked with the package files.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * ssh2's optional native addons (cpu-features, sshcrypto.node) become a module that throws, as a
 * missing addon does; ssh2 catches that and uses its JavaScript code. Left as a require, a checkout
 * whose cpu-features was never compiled spends 5 ms of every start searching for its binding, and
 * the package (which doesn't ship it) would behave unlike the checkout.
 */
const noNativeAddons = {
  name: 'no-native-addons',
  setup(b) {
    b.onResolve({ filter: /^cpu-features$|\.node$/ }, (a) => ({ path: a.path, namespace: 'no-native-addon' }));
    b.onLoad({ filter: /.*/, namespace: 'no-native-addon' }, (a) => ({
      loader: 'js',
      contents: `throw new Error(${JSON.stringify(`${a.path}: hoist runs without native addons`)});`,
    }));
  },
};

/**
 * ssh2's HTTP(S) agents (HTTP over an SSH connection) are unused by hoist, and requiring them loads
 * node:http, node:https and node:tls at every start, before the first dial.
 */
const noHttpAgents = {
  name: 'no-ssh2-http-agents',
  setup(b) {
    b.onLoad({ filter: /[\\/]ssh2[\\/]lib[\\/]http-agents\.js$/ }, () => ({ loader: 'js', contents: 'module.exports = {};' }));
  },
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist');
const CLI = 'hoist-cli.cjs';
mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) if (/^hoist(-[A-Z0-9]+)?\.js$|^hoist(-cli)?\.cjs$/.test(f)) rmSync(path.join(out, f));

// What both files are: CommonJS for Node 20, whose paths.ts finds the package root from its own file.
const commonjs = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // "use strict" first: a banner before esbuild's own would end the directive prologue and leave the code sloppy.
  banner: { js: "'use strict'; var __hoistModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};
const moduleUrl = { 'import.meta.url': '__hoistModuleUrl' };

await build({
  ...commonjs,
  entryPoints: [path.join(root, 'src/cli/main.ts')],
  outfile: path.join(out, CLI),
  // import() becomes require(): the bundle runs as a vm.Script, which has no module loader of its own.
  supported: { 'dynamic-import': false },
  define: moduleUrl,
  // undici stays a package of its own (shipped inside hoist's, see bundleDependencies): hoist tells a
  // crash inside the HTTP client from its own by the client's file names in the stack.
  external: ['undici'],
  plugins: [noNativeAddons, noHttpAgents],
});
// The bundle runs as a function body (Module.wrap), where a #! line is a syntax error.
const cli = path.join(out, CLI);
const code = readFileSync(cli, 'utf8').replace(/^#!.*\n/, '');
writeFileSync(cli, code);

await build({
  ...commonjs,
  entryPoints: [path.join(root, 'src/cli/entry.ts')],
  outfile: path.join(out, 'hoist.cjs'),
  define: {
    ...moduleUrl,
    HOIST_CLI_BUNDLE: JSON.stringify(CLI),
    // The code cache's name: a cache made for another build is never offered to V8.
    HOIST_CLI_BUILD_ID: JSON.stringify(createHash('sha256').update(code).digest('hex').slice(0, 16)),
  },
});
