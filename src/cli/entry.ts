#!/usr/bin/env node
/**
 * What `hoist` runs (dist/hoist.cjs, built by scripts/bundle.mjs; the single executable's main script
 * too; from source, run src/cli/main.ts): `hoist --version` answers from package.json alone (the single
 * executable unpacks its files first), before the CLI is loaded; everything else is the CLI bundle in
 * the package root's dist/ (for the single executable, where it unpacked its files), compiled with
 * V8's code cache (code-cache.ts).
 */
import path from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';
import { runBundle } from './code-cache.js';
import { HOIST_VERSION } from './version.js';

/** The CLI bundle's file name and content hash, written in by scripts/bundle.mjs. */
declare const HOIST_CLI_BUNDLE: string;
declare const HOIST_CLI_BUILD_ID: string;

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${HOIST_VERSION}\n`);
else {
  const run = runBundle(path.join(PACKAGE_ROOT, 'dist', HOIST_CLI_BUNDLE), HOIST_CLI_BUILD_ID);
  process.once('exit', () => run.save());
}
