import { fileURLToPath } from 'node:url';
import path from 'node:path';

// src/paths.ts and dist/paths.js sit at the same depth, so one expression finds
// the package root whether hoist runs compiled or from source under tsx.
export const PACKAGE_ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
export const TEMPLATES_DIR = path.join(PACKAGE_ROOT, 'templates');
