/**
 * smol-toml returns plain objects without positions, so error messages that name a line come from
 * this scan of the source: it maps each key path to the line where its key (or, for an array
 * element, its value) starts. It reads TOML's structure character by character (table headers,
 * arrays of tables nested at any depth, dotted and quoted keys, arrays and inline tables spanning
 * lines, every string form) without building values, so `mirrors[1].url` inside a multi-line
 * array points at the line of that `url`.
 */
export class TomlLocator {
  private readonly lines = new Map<string, number>();

  constructor(source: string) {
    new Scanner(source, (path, line) => {
      const k = path.join('.');
      if (!this.lines.has(k)) this.lines.set(k, line);
    }).document();
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

type Emit = (path: string[], line: number) => void;

class Scanner {
  private i = 0;
  private line = 1;
  /** Arrays of tables seen so far, by resolved path: how many elements each has. */
  private readonly arrays = new Map<string, number>();

  constructor(
    private readonly s: string,
    private readonly emit: Emit,
  ) {}

  document(): void {
    let table: string[] = [];
    while (this.i < this.s.length) {
      this.skipBlank(true);
      if (this.i >= this.s.length) break;
      const c = this.s[this.i];
      if (c === '[') {
        const isArray = this.s[this.i + 1] === '[';
        const line = this.line;
        this.i += isArray ? 2 : 1;
        const keys = this.key();
        this.skipInline();
        this.i += isArray ? 2 : 1;
        table = this.resolve(keys);
        if (isArray) {
          const base = table.join('.');
          const n = this.arrays.get(base) ?? 0;
          this.arrays.set(base, n + 1);
          this.emit(table, line);
          table = [...table, String(n)];
        }
        this.emit(table, line);
        this.skipLine();
      } else {
        this.keyValue(table);
        this.skipLine();
      }
    }
  }

  /** A header's path with the last element of every array of tables it goes through ([[a]] then [a.b] is a.<last>.b). */
  private resolve(keys: string[]): string[] {
    const out: string[] = [];
    for (const k of keys) {
      out.push(k);
      const n = this.arrays.get(out.join('.'));
      if (n !== undefined && out.length < keys.length) out.push(String(n - 1));
    }
    return out;
  }

  private keyValue(table: string[]): void {
    const line = this.line;
    const keys = this.key();
    const full = [...table, ...keys];
    for (let k = table.length + 1; k <= full.length; k++) this.emit(full.slice(0, k), line);
    this.skipInline();
    if (this.s[this.i] !== '=') return; // not TOML; the parser reports it
    this.i++;
    this.skipInline();
    this.value(full);
  }

  /** A dotted key: bare, "basic" or 'literal' parts. */
  private key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipInline();
      const c = this.s[this.i];
      if (c === '"') parts.push(this.basicString());
      else if (c === "'") parts.push(this.literalString());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.s.slice(this.i, this.i + 256));
        if (!m) break;
        parts.push(m[0]);
        this.i += m[0].length;
      }
      this.skipInline();
      if (this.s[this.i] !== '.') break;
      this.i++;
    }
    return parts;
  }

  private value(path: string[]): void {
    const c = this.s[this.i];
    if (c === '"' || c === "'") {
      this.string();
    } else if (c === '[') {
      this.i++;
      let n = 0;
      for (;;) {
        this.skipBlank(true);
        if (this.i >= this.s.length) return;
        if (this.s[this.i] === ']') {
          this.i++;
          return;
        }
        this.emit([...path, String(n)], this.line);
        this.value([...path, String(n)]);
        n++;
        this.skipBlank(true);
        if (this.s[this.i] === ',') this.i++;
      }
    } else if (c === '{') {
      this.i++;
      for (;;) {
        this.skipBlank(true);
        if (this.i >= this.s.length) return;
        if (this.s[this.i] === '}') {
          this.i++;
          return;
        }
        this.keyValue(path);
        this.skipBlank(true);
        if (this.s[this.i] === ',') this.i++;
      }
    } else {
      // A number, boolean or date: up to the next separator.
      while (this.i < this.s.length && !/[,\]}\n#]/.test(this.s[this.i])) this.i++;
    }
  }

  private string(): void {
    if (this.s.startsWith('"""', this.i)) this.multiline('"""');
    else if (this.s.startsWith("'''", this.i)) this.multiline("'''");
    else if (this.s[this.i] === '"') this.basicString();
    else this.literalString();
  }

  private multiline(q: string): void {
    this.i += 3;
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === '\\' && q === '"""') {
        if (this.s[this.i + 1] === '\n') this.line++;
        this.i += 2;
        continue;
      }
      if (this.s.startsWith(q, this.i)) {
        this.i += 3;
        // Up to two more quotes belong to the content ("""a""""" is a"").
        while (this.s[this.i] === q[0]) this.i++;
        return;
      }
      if (c === '\n') this.line++;
      this.i++;
    }
  }

  private basicString(): string {
    this.i++;
    let out = '';
    while (this.i < this.s.length && this.s[this.i] !== '"' && this.s[this.i] !== '\n') {
      if (this.s[this.i] === '\\') {
        const e = this.s[this.i + 1] ?? '';
        const hex = e === 'u' ? 4 : e === 'U' ? 8 : 0;
        if (hex) {
          out += String.fromCodePoint(parseInt(this.s.slice(this.i + 2, this.i + 2 + hex), 16) || 0xfffd);
          this.i += 2 + hex;
        } else {
          out += ESCAPES[e] ?? e;
          this.i += 2;
        }
      } else out += this.s[this.i++];
    }
    if (this.s[this.i] === '"') this.i++;
    return out;
  }

  private literalString(): string {
    const end = this.s.indexOf("'", this.i + 1);
    const stop = end < 0 ? this.s.length : end;
    const out = this.s.slice(this.i + 1, stop);
    this.i = stop + 1;
    return out;
  }

  /** Spaces and tabs. */
  private skipInline(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  /** Whitespace, newlines and comments. */
  private skipBlank(newlines: boolean): void {
    for (;;) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t' || c === '\r') this.i++;
      else if (c === '\n' && newlines) {
        this.line++;
        this.i++;
      } else if (c === '#') {
        while (this.i < this.s.length && this.s[this.i] !== '\n') this.i++;
      } else return;
    }
  }

  /** The rest of a line after a header or a key/value: a comment at most. */
  private skipLine(): void {
    while (this.i < this.s.length && this.s[this.i] !== '\n') this.i++;
  }
}

const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };
