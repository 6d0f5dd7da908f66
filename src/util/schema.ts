import { didYouMean } from './suggest.js';

export type Path = (string | number)[];

export interface Issue {
  path: Path;
  message: string;
}

export interface ParseContext {
  issues: Issue[];
}

export abstract class Schema<T> {
  abstract readonly kind: string;
  isOptional = false;
  defaultValue: T | undefined = undefined;
  description = '';

  abstract check(value: unknown, path: Path, ctx: ParseContext): T | undefined;

  /**
   * Whether `v` is of the JavaScript type this schema reads (a string, a table, …), whatever else is
   * wrong with it: a union hands a value to the one option of its type, so that option's own message
   * reaches the operator. A schema that doesn't say takes every type.
   */
  accepts(v: unknown): boolean {
    void v;
    return true;
  }

  /**
   * What of `value` (which failed with `issues`, found at `path`) can still be used: nothing, unless
   * the schema is a table of independent entries, whose entries without a problem are kept.
   */
  salvage(value: unknown, issues: readonly Issue[], path: Path): unknown {
    void value;
    void issues;
    void path;
    return undefined;
  }

  /** The tables inside this schema, each with the key path the reference names it by (`registries.HOST`). */
  tables(at: string): { at: string; shape: Shape }[] {
    void at;
    return [];
  }

  /**
   * This schema with a further check (or conversion) of a value it accepted: `fn` reports what is
   * wrong through `report` (at the value, or at a key below it) and returns the value to keep, or
   * undefined after reporting. The docs and defaults are those of this schema; `label` names the
   * narrower type in the reference ("http(s) URL" for a string).
   */
  refine<U = T>(fn: (value: T, report: (message: string, below?: Path) => undefined) => U | undefined, label?: string): Schema<U> {
    return new RefinedSchema<T, U>(this, fn, label);
  }

  /** The type as the reference and `hoist tasks NAME` print it: "string", "list of string", "one of a, b". */
  label(): string {
    return this.kind;
  }

  optional(): Schema<T | undefined> {
    const c = this.clone();
    c.isOptional = true;
    return c as Schema<T | undefined>;
  }

  default(v: T): Schema<T> {
    const c = this.clone();
    c.isOptional = true;
    c.defaultValue = v;
    return c;
  }

  describe(text: string): this {
    const c = this.clone();
    c.description = text;
    return c;
  }

  private clone(): this {
    return Object.assign(Object.create(Object.getPrototypeOf(this)), this);
  }
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : v instanceof Date ? 'date' : typeof v);

class StringSchema extends Schema<string> {
  readonly kind = 'string';
  constructor(
    private readonly pattern?: RegExp,
    private readonly patternHint?: string,
  ) {
    super();
  }
  override accepts(v: unknown) {
    return typeof v === 'string';
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (typeof v !== 'string') {
      ctx.issues.push({ path, message: `expected a string, got ${typeName(v)}` });
      return undefined;
    }
    if (this.pattern && !this.pattern.test(v)) {
      ctx.issues.push({ path, message: `"${v}" is not ${this.patternHint ?? `matching ${this.pattern}`}` });
      return undefined;
    }
    return v;
  }
}

/** A JavaScript regular expression, compiled when checked so a bad one is an input error with its line. */
class RegexpSchema extends Schema<string> {
  readonly kind = 'regular expression';
  override accepts(v: unknown) {
    return typeof v === 'string';
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (typeof v !== 'string') {
      ctx.issues.push({ path, message: `expected a regular expression (a string), got ${typeName(v)}` });
      return undefined;
    }
    try {
      new RegExp(v);
    } catch (e) {
      ctx.issues.push({ path, message: `not a valid regular expression: ${(e as Error).message}` });
      return undefined;
    }
    return v;
  }
}

class IntSchema extends Schema<number> {
  readonly kind = 'integer';
  constructor(
    private readonly min?: number,
    private readonly max?: number,
  ) {
    super();
  }
  override accepts(v: unknown) {
    return typeof v === 'number' || typeof v === 'bigint';
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (typeof v === 'bigint') v = Number(v);
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      ctx.issues.push({ path, message: `expected an integer, got ${typeName(v)}` });
      return undefined;
    }
    if ((this.min !== undefined && v < this.min) || (this.max !== undefined && v > this.max)) {
      ctx.issues.push({ path, message: `${v} is out of range ${this.min ?? '-∞'}..${this.max ?? '∞'}` });
      return undefined;
    }
    return v;
  }
}

class BoolSchema extends Schema<boolean> {
  readonly kind = 'boolean';
  override accepts(v: unknown) {
    return typeof v === 'boolean';
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (typeof v !== 'boolean') {
      // A quoted "true" is the usual slip: a short string is shown as written.
      const got = typeof v === 'string' && v.length <= 16 ? JSON.stringify(v) : typeName(v);
      ctx.issues.push({ path, message: `expected true or false, got ${got}` });
      return undefined;
    }
    return v;
  }
}

class EnumSchema<E extends string> extends Schema<E> {
  readonly kind = 'enum';
  constructor(private readonly values: readonly E[]) {
    super();
  }
  override accepts(v: unknown) {
    return typeof v === 'string';
  }
  override label() {
    return `one of ${this.values.map((x) => `"${x}"`).join(', ')}`;
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (typeof v !== 'string' || !(this.values as readonly string[]).includes(v)) {
      const hint = typeof v === 'string' ? didYouMean(v, this.values) : '';
      ctx.issues.push({ path, message: `expected one of ${this.values.map((x) => `"${x}"`).join(', ')}, got ${JSON.stringify(v)}${hint}` });
      return undefined;
    }
    return v as E;
  }
}

class ArraySchema<T> extends Schema<T[]> {
  readonly kind = 'array';
  constructor(
    private readonly item: Schema<T>,
    private readonly acceptSingle = false,
    private readonly minItems = 0,
  ) {
    super();
  }
  override label() {
    return `${this.minItems ? 'non-empty ' : ''}list of ${this.item.label()}`;
  }
  override accepts(v: unknown) {
    return Array.isArray(v) || (this.acceptSingle && this.item.accepts(v));
  }
  override tables(at: string) {
    return this.item.tables(`${at}[]`);
  }
  /** The same list, refused when it has fewer than `n` entries. */
  min(n: number): ArraySchema<T> {
    return new ArraySchema<T>(this.item, this.acceptSingle, n);
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (!Array.isArray(v)) {
      if (this.acceptSingle && v !== undefined) {
        const one = this.item.check(v, path, ctx);
        return one === undefined ? undefined : [one];
      }
      ctx.issues.push({ path, message: `expected a list, got ${typeName(v)}` });
      return undefined;
    }
    if (v.length < this.minItems) {
      ctx.issues.push({ path, message: `expected a list of at least ${this.minItems} ${this.item.label()}, got ${v.length}` });
      return undefined;
    }
    const out: T[] = [];
    v.forEach((x, i) => {
      const r = this.item.check(x, [...path, i], ctx);
      if (r !== undefined) out.push(r);
    });
    return out;
  }
}

/** How a record names and checks its keys: `HOST` in the reference, and why a key is refused (or null). */
export interface RecordKeys {
  name: string;
  problem?: (key: string) => string | null;
}

class RecordSchema<T> extends Schema<Record<string, T>> {
  readonly kind = 'table';
  constructor(
    private readonly value: Schema<T>,
    private readonly keys?: RecordKeys,
  ) {
    super();
  }
  override label() {
    return this.keys ? `table of ${this.keys.name} = ${this.value.label()}` : `table of ${this.value.label()}`;
  }
  override accepts(v: unknown) {
    return isPlainObject(v);
  }
  override tables(at: string) {
    return this.value.tables(`${at}.${this.keys?.name ?? 'NAME'}`);
  }
  override salvage(v: unknown, issues: readonly Issue[], path: Path) {
    if (!isPlainObject(v)) return undefined;
    const below = (i: Issue) => i.path.length > path.length && path.every((p, n) => i.path[n] === p);
    // A problem with the table itself (not one entry's) leaves nothing to keep.
    if (!issues.every(below)) return undefined;
    const bad = new Set(issues.map((i) => i.path[path.length]));
    return Object.fromEntries(Object.entries(v).filter(([k]) => !bad.has(k)));
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (!isPlainObject(v)) {
      ctx.issues.push({ path, message: `expected a table, got ${typeName(v)}` });
      return undefined;
    }
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) {
      const keyProblem = this.keys?.problem?.(k);
      if (keyProblem) {
        ctx.issues.push({ path: [...path, k], message: keyProblem });
        continue;
      }
      const r = this.value.check(x, [...path, k], ctx);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }
}

export type Shape = Record<string, Schema<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type InferShape<S extends Shape> = Simplify<
  { [K in keyof S as undefined extends Infer<S[K]> ? never : K]: Infer<S[K]> } & {
    [K in keyof S as undefined extends Infer<S[K]> ? K : never]?: Infer<S[K]>;
  }
>;

export class ObjectSchema<S extends Shape> extends Schema<InferShape<S>> {
  readonly kind = 'table';
  constructor(readonly shape: S) {
    super();
  }
  override accepts(v: unknown) {
    return isPlainObject(v);
  }
  override tables(at: string) {
    return [{ at, shape: this.shape as Shape }, ...Object.entries(this.shape).flatMap(([k, s]) => s.tables(`${at}.${k}`))];
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (!isPlainObject(v)) {
      ctx.issues.push({ path, message: `expected a table, got ${typeName(v)}` });
      return undefined;
    }
    const keys = Object.keys(this.shape);
    for (const k of Object.keys(v)) {
      if (!(k in this.shape)) {
        // Without a near miss, the keys there are say what was meant.
        const hint = didYouMean(k, keys) || (keys.length ? ` (known: ${keys.join(', ')})` : '');
        ctx.issues.push({ path: [...path, k], message: `unknown key ${JSON.stringify(k)}${hint}` });
      }
    }
    const out: Record<string, unknown> = {};
    let ok = true;
    for (const [k, s] of Object.entries(this.shape)) {
      const x = v[k];
      if (x === undefined) {
        if (!s.isOptional) {
          ctx.issues.push({ path: [...path, k], message: `missing required key "${k}"` });
          ok = false;
        } else if (s.defaultValue !== undefined) out[k] = structuredClone(s.defaultValue);
        continue;
      }
      const r = s.check(x, [...path, k], ctx);
      if (r === undefined) ok = false;
      else out[k] = r;
    }
    return ok ? (out as InferShape<S>) : undefined;
  }
}

class LiteralSchema<L extends string | number | boolean> extends Schema<L> {
  readonly kind = 'literal';
  constructor(private readonly value: L) {
    super();
  }
  override accepts(v: unknown) {
    return v === this.value;
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (v !== this.value) {
      ctx.issues.push({ path, message: `expected ${JSON.stringify(this.value)}, got ${typeName(v)}` });
      return undefined;
    }
    return this.value;
  }
}

class UnknownSchema extends Schema<unknown> {
  readonly kind = 'any';
  check(v: unknown) {
    return v;
  }
}

class UnionSchema<T> extends Schema<T> {
  readonly kind = 'union';
  constructor(
    private readonly options: Schema<T>[],
    private readonly what: string,
  ) {
    super();
  }
  override label() {
    return this.what;
  }
  override accepts(v: unknown) {
    return this.options.some((o) => o.accepts(v));
  }
  // Its label says what each option is (a secret reference's three forms): no table of their keys.
  check(v: unknown, path: Path, ctx: ParseContext) {
    const ofType = this.options.filter((o) => o.accepts(v));
    // One option reads values of this type: its own message says best what is wrong.
    if (ofType.length === 1) return ofType[0].check(v, path, ctx);
    for (const o of ofType) {
      const sub: ParseContext = { issues: [] };
      const r = o.check(v, path, sub);
      if (sub.issues.length === 0) return r;
    }
    const got = isPlainObject(v) ? `a table with keys ${JSON.stringify(Object.keys(v))}` : typeName(v);
    ctx.issues.push({ path, message: `expected ${this.what}, got ${got}` });
    return undefined;
  }
}

class RefinedSchema<T, U> extends Schema<U> {
  readonly kind: string;
  constructor(
    private readonly base: Schema<T>,
    private readonly fn: (value: T, report: (message: string, below?: Path) => undefined) => U | undefined,
    private readonly narrower?: string,
  ) {
    super();
    this.kind = base.kind;
    this.description = base.description;
  }
  override label() {
    return this.narrower ?? this.base.label();
  }
  override accepts(v: unknown) {
    return this.base.accepts(v);
  }
  override tables(at: string) {
    return this.base.tables(at);
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    const before = ctx.issues.length;
    const value = this.base.check(v, path, ctx);
    if (value === undefined || ctx.issues.length > before) return undefined;
    let reported = false;
    const out = this.fn(value, (message, below = []) => {
      reported = true;
      ctx.issues.push({ path: [...path, ...below], message });
      return undefined;
    });
    return reported ? undefined : out;
  }
}

/**
 * A table that may be written as its main key alone (`mirrors = ["https://m"]` for
 * `mirrors = [{ url = "https://m" }]`); a problem with the shorthand is reported at the value itself.
 */
class ShorthandSchema<S extends Shape> extends Schema<InferShape<S>> {
  readonly kind = 'table';
  constructor(
    private readonly table: ObjectSchema<S>,
    private readonly key: keyof S & string,
  ) {
    super();
  }
  override label() {
    return `${this.table.shape[this.key].label()} or table`;
  }
  override accepts(v: unknown) {
    return isPlainObject(v) || this.table.shape[this.key].accepts(v);
  }
  override tables(at: string) {
    return this.table.tables(at);
  }
  check(v: unknown, path: Path, ctx: ParseContext) {
    if (isPlainObject(v)) return this.table.check(v, path, ctx);
    if (!this.table.shape[this.key].accepts(v)) {
      ctx.issues.push({ path, message: `expected ${this.label()}, got ${typeName(v)}` });
      return undefined;
    }
    const before = ctx.issues.length;
    this.table.shape[this.key].check(v, path, ctx);
    if (ctx.issues.length > before) return undefined;
    return this.table.check({ [this.key]: v }, path, ctx);
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export const s = {
  string: (pattern?: RegExp, hint?: string) => new StringSchema(pattern, hint),
  regexp: () => new RegexpSchema(),
  int: (min?: number, max?: number) => new IntSchema(min, max),
  bool: () => new BoolSchema(),
  enum: <E extends string>(...values: E[]) => new EnumSchema<E>(values),
  array: <T>(item: Schema<T>) => new ArraySchema<T>(item),
  /** A list of at least one. */
  nonEmptyArray: <T>(item: Schema<T>) => new ArraySchema<T>(item).min(1),
  /** A list, or one value standing for a list of one (`hosts = "web"`). */
  list: <T>(item: Schema<T>) => new ArraySchema<T>(item, true),
  /** A table of any keys (each checked by `keys.problem`, if given), every value of one schema. */
  record: <T>(value: Schema<T>, keys?: RecordKeys) => new RecordSchema<T>(value, keys),
  object: <S extends Shape>(shape: S) => new ObjectSchema<S>(shape),
  literal: <L extends string | number | boolean>(value: L) => new LiteralSchema<L>(value),
  unknown: () => new UnknownSchema(),
  union: <T>(label: string, ...options: Schema<T>[]) => new UnionSchema<T>(options, label),
  /** `table`, or its `key` alone standing for `{ key = value }`. */
  shorthand: <S extends Shape>(table: ObjectSchema<S>, key: keyof S & string) => new ShorthandSchema<S>(table, key),
};

export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    // Registry hosts (docker.io, host:5000) read best as written, so dots and colons need no quotes.
    // Any other key is quoted as JSON: a control character in it can't split or drive the output.
    else if (/^[A-Za-z0-9_.:-]+$/.test(p)) out += out ? `.${p}` : p;
    else out += out ? `.${JSON.stringify(p)}` : JSON.stringify(p);
  }
  return out;
}

/**
 * The keys of `shape` in `value`, each checked on its own: a key that fits (or its default) is in
 * the result, one that doesn't is left out and reported, a missing required one is reported; keys
 * the shape doesn't name are ignored. For a checker that goes on with what is usable, so one pass
 * reports every problem, rules across keys included.
 */
export function parseFields<S extends Shape>(
  shape: S,
  value: Record<string, unknown>,
  basePath: Path = [],
): { value: Partial<InferShape<S>>; issues: Issue[] } {
  const ctx: ParseContext = { issues: [] };
  const out: Record<string, unknown> = {};
  for (const [k, schema] of Object.entries(shape)) {
    const x = value[k];
    if (x === undefined) {
      if (!schema.isOptional) ctx.issues.push({ path: [...basePath, k], message: `missing required key "${k}"` });
      else if (schema.defaultValue !== undefined) out[k] = structuredClone(schema.defaultValue);
      continue;
    }
    const before = ctx.issues.length;
    const r = schema.check(x, [...basePath, k], ctx);
    if (r !== undefined && ctx.issues.length === before) out[k] = r;
  }
  return { value: out as Partial<InferShape<S>>, issues: ctx.issues };
}

export function parseWith<T>(schema: Schema<T>, value: unknown, basePath: Path = []): { value?: T; issues: Issue[] } {
  const ctx: ParseContext = { issues: [] };
  const v = schema.check(value, basePath, ctx);
  return { value: ctx.issues.length ? undefined : v, issues: ctx.issues };
}
