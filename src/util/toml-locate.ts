/**
 * smol-toml returns plain objects without positions, so error messages that name a line
 * come from this scan of the source: it maps each dotted key path to the line that defines it.
 * It understands table headers, arrays of tables, dotted keys and quoted keys — enough for the
 * files hoist reads; values spanning several lines keep the line where they start.
 */
export class TomlLocator {
  private readonly lines = new Map<string, number>();

  constructor(source: string) {
    let table: string[] = [];
    const arrayCounts = new Map<string, number>();
    const src = source.split('\n');
    let inMultiline: string | null = null;
    for (let i = 0; i < src.length; i++) {
      const raw = src[i];
      if (inMultiline) {
        if (raw.includes(inMultiline)) inMultiline = null;
        continue;
      }
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const arr = /^\[\[(.+)\]\]\s*(#.*)?$/.exec(line);
      const tbl = arr ? null : /^\[(.+)\]\s*(#.*)?$/.exec(line);
      if (arr) {
        const base = splitKey(arr[1]).join('.');
        const n = arrayCounts.get(base) ?? 0;
        arrayCounts.set(base, n + 1);
        table = [...splitKey(arr[1]), String(n)];
        this.set(table.join('.'), i + 1);
        this.set(base, i + 1);
        continue;
      }
      if (tbl) {
        table = splitKey(tbl[1]);
        table = this.withArrayIndex(table, arrayCounts);
        this.set(table.join('.'), i + 1);
        continue;
      }
      const eq = findAssignment(line);
      if (eq < 0) continue;
      const key = splitKey(line.slice(0, eq));
      const full = [...table, ...key];
      for (let k = table.length + 1; k <= full.length; k++) this.set(full.slice(0, k).join('.'), i + 1);
      const value = line.slice(eq + 1).trim();
      for (const q of ['"""', "'''"]) {
        if (value.startsWith(q) && value.indexOf(q, 3) < 0) inMultiline = q;
      }
    }
  }

  /** Nested tables under an array of tables ([[tasks]] then [tasks.params]) belong to its last element. */
  private withArrayIndex(path: string[], counts: Map<string, number>): string[] {
    for (let k = path.length; k > 0; k--) {
      const base = path.slice(0, k).join('.');
      const n = counts.get(base);
      if (n !== undefined) return [...path.slice(0, k), String(n - 1), ...path.slice(k)];
    }
    return path;
  }

  private set(path: string, line: number) {
    if (!this.lines.has(path)) this.lines.set(path, line);
  }

  /** Line of the key path, or of its nearest defined ancestor. */
  lineOf(path: (string | number)[]): number | undefined {
    for (let k = path.length; k > 0; k--) {
      const l = this.lines.get(path.slice(0, k).join('.'));
      if (l !== undefined) return l;
    }
    return undefined;
  }
}

function findAssignment(line: string): number {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '=') return i;
    else if (c === '#') return -1;
  }
  return -1;
}

const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };

export function splitKey(key: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quote: string | null = null;
  const k = key.trim();
  for (let i = 0; i < k.length; i++) {
    const c = k[i];
    if (quote) {
      // A basic string's escapes, decoded as the parser does, so the key path matches the parsed key.
      if (c === '\\' && quote === '"') {
        const e = k[i + 1] ?? '';
        const hex = e === 'u' ? 4 : e === 'U' ? 8 : 0;
        if (hex) {
          cur += String.fromCodePoint(parseInt(k.slice(i + 2, i + 2 + hex), 16) || 0xfffd);
          i += 1 + hex;
        } else {
          cur += ESCAPES[e] ?? e;
          i++;
        }
      } else if (c === quote) quote = null;
      else cur += c;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '.') {
      parts.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  parts.push(cur.trim());
  return parts;
}
