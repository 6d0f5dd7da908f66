import { Schema, type ParseContext, type Path } from '../../../util/schema.js';

/**
 * A patch release of each containerd line hoist knows of (the 2.x tags its companion versions were
 * read at, the 1.x releases its tests install): an example of what "2.1" should have been.
 */
export const KNOWN_PATCH_RELEASES: Readonly<Record<string, string>> = {
  '1.6': '1.6.20',
  '1.7': '1.7.24',
  '2.0': '2.0.11',
  '2.1': '2.1.9',
  '2.2': '2.2.7',
  '2.3': '2.3.4',
};

const FULL = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;

/**
 * A release version written as X.Y.Z. A version written without quotes in TOML arrives as a number
 * (`2.1`), and "2.1" names a line, not a release: both get an answer that says what to write.
 */
export class ReleaseVersionSchema extends Schema<string> {
  readonly kind = 'string';
  constructor(
    private readonly component: string,
    private readonly patches: Readonly<Record<string, string>> = {},
  ) {
    super();
  }
  override label() {
    return 'a version "X.Y.Z"';
  }
  check(v: unknown, path: Path, ctx: ParseContext): string | undefined {
    const raw = typeof v === 'number' ? String(v) : v;
    if (typeof raw !== 'string') {
      ctx.issues.push({ path, message: `expected a ${this.component} version like "2.1.9", got ${v === null ? 'null' : typeof v}` });
      return undefined;
    }
    if (FULL.test(raw)) {
      if (typeof v === 'number') ctx.issues.push({ path, message: `${raw} is a number here: write the version as a string, "${raw}"` });
      return typeof v === 'number' ? undefined : raw;
    }
    if (/^v\d/.test(raw)) {
      ctx.issues.push({ path, message: `"${raw}" must not start with "v" (write "${raw.slice(1)}")` });
      return undefined;
    }
    const line = /^(\d+)\.(\d+)$/.exec(raw);
    if (line) {
      const known = this.patches[raw];
      const lines = Object.keys(this.patches);
      ctx.issues.push({
        path,
        message:
          `${typeof v === 'number' ? `${raw} (a number)` : `"${raw}"`} names a ${this.component} line, not a release: did you mean ${raw}.x` +
          (known ? `, e.g. "${known}"` : '') +
          `?${lines.length ? ` Known releases: ${lines.map((l) => this.patches[l]).join(', ')}` : ''}`,
      });
      return undefined;
    }
    ctx.issues.push({ path, message: `"${raw}" is not a ${this.component} version: expected MAJOR.MINOR.PATCH, e.g. "2.1.9"` });
    return undefined;
  }
}
