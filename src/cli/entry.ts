#!/usr/bin/env node
/**
 * What `hoist` runs (the bundle's entry): `hoist --version` answers before the CLI parser and the
 * commands' table are even read, the rest goes to main.ts.
 */
import { HOIST_VERSION } from './version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${HOIST_VERSION}\n`);
else await import('./main.js');
