import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'smol-toml';
import { TomlLocator } from '../../src/util/toml-locate.js';

test('an error inside an array of inline tables points at its own line', () => {
  const src = [
    '[registries."docker.io"]',
    'mirrors = [',
    '  { url = "https://a" },',
    '  { url = "bad", skip_verify = true },',
    ']',
    'auth = { username = "u", password = "p" }',
  ].join('\n');
  const loc = new TomlLocator(src);
  assert.equal(loc.lineOf(['registries', 'docker.io', 'mirrors', 1, 'url']), 4);
  assert.equal(loc.lineOf(['registries', 'docker.io', 'mirrors', 0, 'url']), 3);
  assert.equal(loc.lineOf(['registries', 'docker.io', 'mirrors']), 2);
  assert.equal(loc.lineOf(['registries', 'docker.io', 'auth', 'password']), 6);
});

test('arrays of tables nested in arrays of tables: each element and its sub-tables', () => {
  const src = [
    '[[fruit]]',
    'name = "apple"',
    '[fruit.physical]',
    'color = "red"',
    '[[fruit.variety]]',
    'name = "red delicious"',
    '[[fruit]]',
    'name = "banana"',
    '[[fruit.variety]]',
    'name = "plantain"',
  ].join('\n');
  const loc = new TomlLocator(src);
  assert.equal(loc.lineOf(['fruit', 0, 'physical', 'color']), 4);
  assert.equal(loc.lineOf(['fruit', 0, 'variety', 0, 'name']), 6);
  assert.equal(loc.lineOf(['fruit', 1, 'name']), 8);
  assert.equal(loc.lineOf(['fruit', 1, 'variety', 0, 'name']), 10);
});

test('multi-line strings and comments with brackets and equals signs do not move lines', () => {
  const src = ['a = """', 'x = [1', '"""', '# b = 2 [c]', "d = '''", "[[e]]'''", 'f = "g = \\"[h]\\" # i"', 'j = 1 # k = 2'].join('\n');
  const loc = new TomlLocator(src);
  assert.equal(loc.lineOf(['d']), 5);
  assert.equal(loc.lineOf(['f']), 7);
  assert.equal(loc.lineOf(['j']), 8);
  assert.equal(loc.lineOf(['x']), undefined);
  assert.equal(loc.lineOf(['e']), undefined);
});

/**
 * Property: random documents, written with the line of every key and array element recorded as
 * they are written; smol-toml must parse each and hold every recorded path, and the locator must
 * name the recorded line for each.
 */
test('property: every key path of random documents is located at the line it was written on', () => {
  let seed = 0x5eed;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  let counter = 0;
  const name = () => {
    counter++;
    return pick([`k${counter}`, `"q.${counter} x"`, `'l#${counter}'`, `b-${counter}_z`]);
  };
  const keyOf = (written: string) => (written.startsWith('"') || written.startsWith("'") ? written.slice(1, -1) : written);

  for (let round = 0; round < 300; round++) {
    const lines: string[] = [];
    const expect: { path: (string | number)[]; line: number }[] = [];
    /** A value as text lines; marks give each element's line offset within them. */
    const value = (path: (string | number)[], depth: number): { text: string[]; marks: { path: (string | number)[]; offset: number }[] } => {
      const r = rand();
      if (depth < 2 && r < 0.25) {
        const text = ['['];
        const marks: { path: (string | number)[]; offset: number }[] = [];
        const n = 1 + Math.floor(rand() * 3);
        for (let j = 0; j < n; j++) {
          const v = value([...path, j], depth + 1);
          marks.push({ path: [...path, j], offset: text.length }, ...v.marks.map((m) => ({ ...m, offset: m.offset + text.length })));
          text.push(`  ${v.text[0]}`, ...v.text.slice(1));
          text[text.length - 1] += ',';
          if (rand() < 0.3) text.push('  # a comment with ] and }');
        }
        text.push(']');
        return { text, marks };
      }
      if (depth < 3 && r < 0.45) {
        const parts: string[] = [];
        const marks: { path: (string | number)[]; offset: number }[] = [];
        for (let j = 0; j < 1 + Math.floor(rand() * 3); j++) {
          const k = name();
          marks.push({ path: [...path, keyOf(k)], offset: 0 });
          parts.push(`${k} = ${pick(['1', 'true', '"s}]"', "'l,'", '1979-05-27'])}`);
        }
        return { text: [`{ ${parts.join(', ')} }`], marks };
      }
      if (r < 0.55) return { text: ['"""', 'multi = [', 'line ]"""'], marks: [] };
      return { text: [pick(['42', '-1.5', 'false', '"a = [b] # c"', "'x\\y'", '"\\u00e9\\""', '2024-01-01T00:00:00Z'])], marks: [] };
    };
    const keyValues = (table: (string | number)[]) => {
      for (let j = 0; j < 1 + Math.floor(rand() * 3); j++) {
        const k = name();
        const path = [...table, keyOf(k)];
        const v = value(path, 0);
        const at = lines.length + 1;
        expect.push({ path, line: at }, ...v.marks.map((m) => ({ path: m.path, line: at + m.offset })));
        lines.push(`${k} = ${v.text[0]}`, ...v.text.slice(1));
        if (rand() < 0.2) lines.push('', '# [not.a.table]');
      }
    };
    keyValues([]);
    for (let t = 0; t < 1 + Math.floor(rand() * 3); t++) {
      const tk = name();
      if (rand() < 0.5) {
        lines.push(`[${tk}]`);
        keyValues([keyOf(tk)]);
      } else {
        for (let e = 0; e < 1 + Math.floor(rand() * 2); e++) {
          lines.push(`[[ ${tk} ]]`);
          keyValues([keyOf(tk), e]);
          const sub = name();
          lines.push(`[${tk}.${sub}]`);
          keyValues([keyOf(tk), e, keyOf(sub)]);
        }
      }
    }
    const src = lines.join('\n');
    const data = parse(src) as Record<string, unknown>;
    const loc = new TomlLocator(src);
    for (const { path, line } of expect) {
      let cur: unknown = data;
      for (const p of path) cur = (cur as Record<string | number, unknown>)[p];
      assert.notEqual(cur, undefined, `generator wrote ${path.join('.')} that the parser doesn't have:\n${src}`);
      assert.equal(loc.lineOf(path), line, `${path.join('.')} in:\n${src}`);
    }
  }
});
