// util/schema.ts: the pieces the registries schema is built from (refinements, keyed records,
// non-empty lists, shorthand tables, unions that defer to the option of the value's type) and
// the tables the reference is generated from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPath, parseFields, parseWith, s, type Infer, type Schema } from '../../src/util/schema.js';
import { registriesSchema, type RegistryVars } from '../../src/modules/containerd/config/registry-schema.js';

const problems = (schema: Schema<unknown>, v: unknown) => parseWith(schema, v, ['x']).issues.map((i) => `${formatPath(i.path)}: ${i.message}`);

test('refine: a further check reports at the value or below it, and its label names the narrower type', () => {
  const even = s.int().refine((n, report) => (n % 2 ? report(`${n} is odd`) : n * 10), 'even integer');
  assert.equal(parseWith(even, 4).value, 40);
  assert.deepEqual(problems(even, 3), ['x: 3 is odd']);
  // The base check comes first: the refinement never sees a value of the wrong type.
  assert.deepEqual(problems(even, 'a'), ['x: expected an integer, got string']);
  assert.equal(even.label(), 'even integer');
  const pair = s.object({ a: s.int(), b: s.int() }).refine((o, report) => (o.a > o.b ? report('must not exceed b', ['a']) : o));
  assert.deepEqual(problems(pair, { a: 2, b: 1 }), ['x.a: must not exceed b']);
  // Docs and defaults set after refine stay on the refined schema.
  const d = even.default(2).describe('an even number');
  assert.equal(d.description, 'an even number');
  assert.equal(d.defaultValue, 2);
});

test('record keys: a refused key is reported at itself and its value is not checked', () => {
  const r = s.record(s.int(), { name: 'PORT_NAME', problem: (k) => (/^[a-z]+$/.test(k) ? null : 'is not lower-case') });
  assert.deepEqual(parseWith(r, { http: 80 }).value, { http: 80 });
  assert.deepEqual(problems(r, { HTTP: 'x', ok: 1 }), ['x.HTTP: is not lower-case']);
  assert.equal(r.label(), 'table of PORT_NAME = integer');
  assert.equal(s.record(s.string()).label(), 'table of string');
});

test('non-empty lists say how many they need', () => {
  const l = s.nonEmptyArray(s.enum('a', 'b'));
  assert.deepEqual(problems(l, []), ['x: expected a list of at least 1 one of "a", "b", got 0']);
  assert.deepEqual(parseWith(l, ['b']).value, ['b']);
  assert.equal(l.label(), 'non-empty list of one of "a", "b"');
  const single = s.list(s.string()).min(1);
  assert.deepEqual(parseWith(single, 'one').value, ['one'], 'a single value still stands for a list of one');
});

test("a union hands a value to the one option of its type, so that option's message is reported", () => {
  const u = s.union<string | number>('a name or a port', s.string(/^[a-z]+$/, 'a lower-case name'), s.int(1, 65535));
  assert.deepEqual(problems(u, 'ABC'), ['x: "ABC" is not a lower-case name']);
  assert.deepEqual(problems(u, 70000), ['x: 70000 is out of range 1..65535']);
  assert.deepEqual(problems(u, true), ['x: expected a name or a port, got boolean']);
  // Several options of one type: the first that accepts wins; if none does, the union's own message, naming the keys.
  const t = s.union<{ a: string } | { b: string }>('{ a = … } or { b = … }', s.object({ a: s.string() }), s.object({ b: s.string() }));
  assert.deepEqual(parseWith(t, { b: 'x' }).value, { b: 'x' });
  assert.deepEqual(problems(t, { c: 'x' }), ['x: expected { a = … } or { b = … }, got a table with keys ["c"]']);
});

test('shorthand: the main key alone stands for the table, and its problems are reported at the value', () => {
  const m = s.shorthand(s.object({ url: s.string(/^https:/, 'an https URL'), weight: s.int().default(1) }), 'url');
  assert.deepEqual(parseWith(m, 'https://a').value, { url: 'https://a', weight: 1 });
  assert.deepEqual(parseWith(m, { url: 'https://a', weight: 3 }).value, { url: 'https://a', weight: 3 });
  assert.deepEqual(problems(m, 'http://a'), ['x: "http://a" is not an https URL']);
  assert.deepEqual(problems(m, { url: 'http://a' }), ['x.url: "http://a" is not an https URL']);
  assert.deepEqual(problems(m, 7), ['x: expected string or table, got number']);
});

test('an unknown key names the nearest one, or else every key there is', () => {
  const o = s.object({ alpha: s.int().optional(), beta: s.int().optional() });
  assert.deepEqual(problems(o, { alpah: 1 }), ['x.alpah: unknown key "alpah"; did you mean "alpha"?']);
  assert.deepEqual(problems(o, { zzz: 1 }), ['x.zzz: unknown key "zzz" (known: alpha, beta)']);
});

test('tables(): every table inside a schema with the key path the reference names it by', () => {
  const at = registriesSchema.tables('registries').map((t) => `${t.at}: ${Object.keys(t.shape).join(' ')}`);
  assert.deepEqual(at, [
    'registries.HOST: server mirrors ca client_cert client_key skip_verify insecure_http username password auth',
    'registries.HOST.mirrors[]: url capabilities ca client_cert client_key skip_verify override_path headers',
  ]);
});

test('registries: defaults fill a registry and each mirror, and the inferred type is the checked shape', () => {
  const { value, issues } = parseWith(registriesSchema, {
    'docker.io': { mirrors: ['https://m.example', { url: 'https://n.example', capabilities: ['push', 'pull', 'pull'], headers: { 'X-A': 'a' } }] },
  });
  assert.deepEqual(issues, []);
  const reg: RegistryVars = value!['docker.io'];
  assert.deepEqual(reg, {
    mirrors: [
      { url: 'https://m.example', capabilities: ['pull', 'resolve'], skip_verify: false, override_path: false, headers: {} },
      // Capabilities come out in canonical order without duplicates; one header value is a list of one.
      { url: 'https://n.example', capabilities: ['pull', 'push'], skip_verify: false, override_path: false, headers: { 'X-A': ['a'] } },
    ],
    skip_verify: false,
    insecure_http: false,
  });
  // Compile-time: the schema's type has the defaulted keys as required and the others optional.
  const typed: Infer<typeof registriesSchema>[string] = { mirrors: [], skip_verify: false, insecure_http: false };
  assert.equal(typed.ca, undefined);
});

test('parseFields: each key on its own, so what fits is kept beside what does not', () => {
  const shape = { need: s.int(), port: s.int(1, 9).default(5), name: s.string().optional() };
  const r = parseFields(shape, { port: 70, name: 'a', other: true }, ['v']);
  assert.deepEqual(r.value, { name: 'a' }, 'the bad port is left out, not replaced by its default; other keys are ignored');
  assert.deepEqual(
    r.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
    ['v.need: missing required key "need"', 'v.port: 70 is out of range 1..9'],
  );
  assert.deepEqual(parseFields(shape, { need: 1 }).value, { need: 1, port: 5 });
});

test('a boolean written as a short string is shown as written', () => {
  assert.deepEqual(problems(s.bool(), 'true'), ['x: expected true or false, got "true"']);
  assert.deepEqual(problems(s.bool(), 'x'.repeat(40)), ['x: expected true or false, got string']);
  assert.deepEqual(problems(s.bool(), 1), ['x: expected true or false, got number']);
});
