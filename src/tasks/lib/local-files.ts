import path from 'node:path';
import { existsSync } from 'node:fs';
import { TEMPLATES_DIR } from '../../paths.js';

/** A template or source path: relative to the playbook, else to hoist's templates/ folder. */
export function resolveLocal(p: string, playbookDir: string): string {
  if (path.isAbsolute(p)) return p;
  const nearPlaybook = path.resolve(playbookDir, p);
  if (existsSync(nearPlaybook)) return nearPlaybook;
  const inTemplates = path.resolve(TEMPLATES_DIR, p);
  return existsSync(inTemplates) ? inTemplates : nearPlaybook;
}
