import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildInventory, selectHosts } from '../../src/inventory/inventory.js';
import { parseToml } from '../../src/util/toml-file.js';
import { InputError } from '../../src/util/errors.js';

const inv = (text: string) => buildInventory(parseToml('inv.toml', text));

function throwsAt(text: string, re: RegExp) {
  assert.throws(
    () => inv(text),
    (e: unknown) => {
      assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
      assert.match(e.message, re);
      return true;
    },
  );
}

const base = `
[defaults]
user = "root"
[defaults.vars]
level = "defaults"
only_defaults = 1

[groups.k8s]
children = ["workers"]
vars = { level = "k8s", only_k8s = true }

[groups.workers]
hosts = ["w1", "w2"]
[groups.workers.vars]
level = "workers"

[hosts.cp1]
address = "10.0.0.1"

[hosts.w1]
address = "10.0.0.2"
port = 2222

[hosts.w2]
address = "10.0.0.3"
vars = { level = "host" }
`;

test('variables: defaults < parent group < child group < host', () => {
  const i = inv(base);
  const w1 = i.hosts.find((h) => h.name === 'w1')!;
  const w2 = i.hosts.find((h) => h.name === 'w2')!;
  const cp1 = i.hosts.find((h) => h.name === 'cp1')!;
  assert.equal(w1.vars.level, 'workers');
  assert.equal(w1.vars.only_k8s, true);
  assert.equal(w1.vars.only_defaults, 1);
  assert.equal(w2.vars.level, 'host');
  assert.equal(cp1.vars.level, 'defaults');
  assert.deepEqual(w1.groups, ['k8s', 'workers']);
  assert.equal(w1.port, 2222);
  assert.equal(w1.user, 'root');
});

test('an unknown key names file, line, key and the nearest valid key', () => {
  throwsAt(`[hosts.a]\naddress = "x"\nadress2 = "y"\nuser = "u"\n`, /inv\.toml:3 \(hosts\.a\.adress2\): unknown key "adress2"; did you mean "address"\?/);
  throwsAt(`[defaults]\nidentity = "k"\n[hosts.a]\naddress = "x"\n`, /inv\.toml:2 .*unknown key "identity"; did you mean "identity_file"/);
});

test('wrong types, missing address, unknown group and host are located', () => {
  throwsAt(`[hosts.a]\naddress = "x"\nport = "22"\n`, /inv\.toml:3 \(hosts\.a\.port\): expected an integer, got string/);
  throwsAt(`[hosts.a]\nuser = "root"\n`, /inv\.toml:1 \(hosts\.a\.address\): missing required key "address"/);
  throwsAt(`[groups.g]\nchildren = ["wokers"]\n[groups.workers]\n[hosts.a]\naddress = "x"\n`, /inv\.toml:2 .*unknown group "wokers"; did you mean "workers"/);
  throwsAt(`[groups.g]\nhosts = ["b"]\n[hosts.a]\naddress = "x"\n`, /unknown host "b"/);
});

test('duplicate hosts and group cycles are refused', () => {
  throwsAt(`[hosts.a]\naddress = "10.0.0.1"\n[hosts.b]\naddress = "10.0.0.1"\n`, /inv\.toml:4 .*duplicate host: "b" has the same address and port as "a"/);
  throwsAt(`[groups.x]\nchildren = ["y"]\n[groups.y]\nchildren = ["x"]\n[hosts.a]\naddress = "z"\n`, /group cycle: x → y → x/);
  throwsAt(`[hosts.a]\naddress = "10.0.0.1"\n[hosts.a]\naddress = "10.0.0.2"\n`, /invalid TOML/);
});

test('invalid TOML names the line', () => {
  assert.throws(() => inv(`[hosts.a]\naddress = "x\n`), /inv\.toml:2: invalid TOML/);
});

test('host patterns: groups, globs, exclusion, intersection, inventory order', () => {
  const i = inv(base);
  const names = (p: string | string[]) => selectHosts(i, p).map((h) => h.name);
  assert.deepEqual(names('workers'), ['w1', 'w2']);
  assert.deepEqual(names('w*'), ['w1', 'w2']);
  assert.deepEqual(names('all,!w1'), ['cp1', 'w2']);
  assert.deepEqual(names(['k8s', '&w2']), ['w2']);
  assert.deepEqual(names('w2,cp1'), ['cp1', 'w2']);
  assert.throws(() => names('wrokers'), /no host or group named "wrokers"; did you mean "workers"/);
});

test("Ansible's ':' separator and repeated -l (joined with ',') mean the same as ','", () => {
  const i = inv(base);
  const names = (p: string) => selectHosts(i, p).map((h) => h.name);
  assert.deepEqual(names('workers:!w1'), ['w2']);
  assert.deepEqual(names('k8s:&w2'), ['w2']);
  assert.deepEqual(names('w2:cp1'), names('w2,cp1'));
});

test('a host or child group listed twice in one group is reported where it repeats', () => {
  assert.throws(
    () => inv(`[groups.g]\nhosts = ["a", "b", "a"]\n[hosts.a]\naddress = "10.0.0.1"\n[hosts.b]\naddress = "10.0.0.2"\n`),
    /inv\.toml:2 \(groups\.g\.hosts\.2\): "a" is listed twice in group "g" \(also at hosts\[0\]\)/,
  );
});
