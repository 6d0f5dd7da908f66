import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { seaPackageRoot } from './sea-files.js';

// src/paths.ts and dist/paths.js sit at the same depth, so one expression finds
// the package root whether hoist runs compiled or from source under tsx. The single executable
// has no module URL: its root is where it unpacked its files (src/sea-files.ts).
export const PACKAGE_ROOT = seaPackageRoot() ?? path.resolve(fileURLToPath(new URL('..', import.meta.url)));
export const TEMPLATES_DIR = path.join(PACKAGE_ROOT, 'templates');
