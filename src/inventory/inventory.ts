import path from 'node:path';
import os from 'node:os';
import picomatch from 'picomatch';
import { InputError, InputErrors } from '../util/errors.js';
import { readToml, validateToml, type LoadedToml } from '../util/toml-file.js';
import { didYouMean } from '../util/suggest.js';
import { inventorySchema, type InventoryFile } from './schema.js';
import type { VarLayer, Vars } from '../util/var-layer.js';
import type { LocatedSecretRef } from '../util/secret-ref.js';

export type { Vars } from '../util/var-layer.js';

export interface InventoryHost {
  name: string;
  address: string;
  port?: number;
  user?: string;
  identityFile?: string;
  jump?: string;
  become: boolean;
  becomeUser: string;
  becomePasswordFile?: string;
  becomePassword?: LocatedSecretRef;
  identityPassphrase?: LocatedSecretRef;
  connectTimeout?: number;
  commandTimeout?: number;
  /** Groups the host belongs to, outermost first: the order their vars apply. */
  groups: string[];
  vars: Vars;
  /** Where the host's variables come from, lowest precedence first: defaults, groups (parents first), the host. */
  varLayers: VarLayer[];
}

export interface Inventory {
  file: string;
  knownHostsFile?: string;
  hosts: InventoryHost[];
  groups: Map<string, Set<string>>;
  /** Variables the inventory declares (`[defaults] declare`): known to every playbook run with it. */
  declared: string[];
}

export async function loadInventory(file: string): Promise<Inventory> {
  return buildInventory(await readToml(file));
}

export function buildInventory(doc: LoadedToml): Inventory {
  const inv = validateToml(doc, inventorySchema);
  const errors: InputError[] = [];
  const at = (keyPath: (string | number)[], msg: string) =>
    errors.push(new InputError(msg, { file: doc.file, line: doc.locator.lineOf(keyPath), key: keyPath.join('.') }));

  const hostNames = Object.keys(inv.hosts);
  const groups = inv.groups ?? {};
  const groupNames = Object.keys(groups);
  for (const g of groupNames) {
    if (g in inv.hosts) at(['groups', g], `"${g}" is both a group and a host; names must be unique`);
    if (g === 'all') at(['groups', g], `"all" is reserved: it always means every host`);
  }
  for (const [g, def] of Object.entries(groups)) {
    const listed = new Map<string, number>();
    (def.hosts ?? []).forEach((h, i) => {
      if (!(h in inv.hosts)) at(['groups', g, 'hosts', i], `unknown host "${h}"${didYouMean(h, hostNames)}`);
      // Harmless to hoist, but usually a paste that was meant to name another host.
      if (listed.has(h)) at(['groups', g, 'hosts', i], `"${h}" is listed twice in group "${g}" (also at hosts[${listed.get(h)}])`);
      else listed.set(h, i);
    });
    const children = new Map<string, number>();
    (def.children ?? []).forEach((c, i) => {
      if (!(c in groups)) at(['groups', g, 'children', i], `unknown group "${c}"${didYouMean(c, groupNames)}`);
      if (children.has(c)) at(['groups', g, 'children', i], `"${c}" is listed twice in the children of group "${g}"`);
      else children.set(c, i);
    });
  }
  checkDuplicates(inv, at);
  if (errors.length === 0) {
    const cycle = findCycle(groups);
    if (cycle) at(['groups', cycle[0], 'children'], `group cycle: ${cycle.join(' → ')}`);
  }
  if (errors.length) throw errors.length === 1 ? errors[0] : new InputErrors(errors);

  const members = groupMembers(groups);
  const depth = groupDepths(groups);
  const base = path.dirname(path.resolve(doc.file));
  const d = inv.defaults ?? {};
  const hosts: InventoryHost[] = hostNames.map((name) => {
    const h = inv.hosts[name];
    const hostGroups = groupNames
      .filter((g) => members.get(g)!.has(name))
      // Parents before children, so a child group's vars win; ties keep file order.
      .sort((a, b) => depth.get(a)! - depth.get(b)!);
    const layer = (label: string, at: (string | number)[], v: Vars | undefined): VarLayer => ({
      name: label,
      file: doc.file,
      vars: v ?? {},
      lineOf: (p) => doc.locator.lineOf([...at, ...p]),
    });
    const varLayers = [
      layer('inventory defaults', ['defaults', 'vars'], d.vars),
      ...hostGroups.map((g) => layer(`inventory group "${g}"`, ['groups', g, 'vars'], groups[g].vars)),
      layer(`inventory host "${name}"`, ['hosts', name, 'vars'], h.vars),
    ];
    const vars: Vars = Object.assign({}, ...varLayers.map((l) => l.vars));
    // Connection settings: the host's own, else its innermost group's, else the defaults.
    const layers = [h, ...hostGroups.map((g) => groups[g]).reverse(), d];
    const pick = <K extends keyof typeof h & keyof typeof d>(k: K) => layers.find((l) => l[k] !== undefined)?.[k];
    const paths: (string | number)[][] = [['hosts', name], ...hostGroups.map((g) => ['groups', g]).reverse(), ['defaults']];
    // A reference keeps where it was written, so a failure to resolve it names the file and line.
    const ref = (k: 'become_password' | 'identity_passphrase'): LocatedSecretRef | undefined => {
      const i = layers.findIndex((l) => l[k] !== undefined);
      const r = i < 0 ? undefined : layers[i][k];
      if (!r) return undefined;
      const keyPath = [...paths[i], k];
      return { ref: r, at: `${doc.file}:${doc.locator.lineOf(keyPath) ?? '?'} (${keyPath.join('.')})` };
    };
    return {
      name,
      address: h.address,
      port: pick('port'),
      user: pick('user'),
      identityFile: resolvePath(base, pick('identity_file')),
      jump: pick('jump'),
      become: pick('become') ?? false,
      becomeUser: pick('become_user') ?? 'root',
      becomePasswordFile: resolvePath(base, pick('become_password_file')),
      becomePassword: ref('become_password'),
      identityPassphrase: ref('identity_passphrase'),
      connectTimeout: pick('connect_timeout'),
      commandTimeout: pick('command_timeout'),
      groups: hostGroups,
      vars,
      varLayers,
    };
  });
  const allGroups = new Map<string, Set<string>>(members);
  allGroups.set('all', new Set(hostNames));
  return { file: doc.file, knownHostsFile: resolvePath(base, d.known_hosts_file), hosts, groups: allGroups, declared: d.declare ?? [] };
}

/** TOML itself rejects a key defined twice; this catches the same host written under two spellings of one address. */
function checkDuplicates(inv: InventoryFile, at: (k: string[], m: string) => void) {
  const seen = new Map<string, string>();
  for (const [name, h] of Object.entries(inv.hosts)) {
    const key = `${h.address}:${h.port ?? inv.defaults?.port ?? 22}`;
    const prev = seen.get(key);
    if (prev) at(['hosts', name, 'address'], `duplicate host: "${name}" has the same address and port as "${prev}" (${key})`);
    else seen.set(key, name);
  }
}

function resolvePath(base: string, p: string | undefined): string | undefined {
  if (!p) return undefined;
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return path.resolve(base, p);
}

type GroupDefs = NonNullable<InventoryFile['groups']>;

function findCycle(groups: GroupDefs): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (g: string): string[] | undefined => {
    if (state.get(g) === 'done') return undefined;
    if (state.get(g) === 'visiting') return [...stack.slice(stack.indexOf(g)), g];
    state.set(g, 'visiting');
    stack.push(g);
    for (const c of groups[g]?.children ?? []) {
      const r = visit(c);
      if (r) return r;
    }
    stack.pop();
    state.set(g, 'done');
    return undefined;
  };
  for (const g of Object.keys(groups)) {
    const r = visit(g);
    if (r) return r;
  }
  return undefined;
}

function groupMembers(groups: GroupDefs): Map<string, Set<string>> {
  const memo = new Map<string, Set<string>>();
  const members = (g: string): Set<string> => {
    let m = memo.get(g);
    if (m) return m;
    m = new Set(groups[g].hosts ?? []);
    memo.set(g, m);
    for (const c of groups[g].children ?? []) for (const h of members(c)) m.add(h);
    return m;
  };
  for (const g of Object.keys(groups)) members(g);
  return memo;
}

/** Depth of a group below its outermost ancestor: parents apply their vars first. */
function groupDepths(groups: GroupDefs): Map<string, number> {
  const depth = new Map<string, number>();
  for (const g of Object.keys(groups)) depth.set(g, 0);
  let changed = true;
  while (changed) {
    changed = false;
    for (const [g, def] of Object.entries(groups)) {
      for (const c of def.children ?? []) {
        const want = depth.get(g)! + 1;
        if (depth.get(c)! < want) {
          depth.set(c, want);
          changed = true;
        }
      }
    }
  }
  return depth;
}

/**
 * Host patterns as in --limit and a playbook's `hosts`: names of hosts or groups, globs over
 * both ("web*"), comma-separated or a list; "!pattern" removes, "&pattern" intersects.
 */
export function selectHosts(inv: Inventory, patterns: string | string[]): InventoryHost[] {
  // Ansible's separators: ',' and ':' (a pattern list, or one given several times with -l).
  const items = (Array.isArray(patterns) ? patterns : [patterns])
    .flatMap((p) => p.split(/[,:]/))
    .map((p) => p.trim())
    .filter(Boolean);
  const hostNames = inv.hosts.map((h) => h.name);
  const expand = (pat: string): Set<string> => {
    if (inv.groups.has(pat)) return new Set(inv.groups.get(pat));
    if (hostNames.includes(pat)) return new Set([pat]);
    const isMatch = picomatch(pat);
    const out = new Set<string>();
    for (const h of hostNames) if (isMatch(h)) out.add(h);
    for (const [g, m] of inv.groups) if (isMatch(g)) for (const h of m) out.add(h);
    if (out.size === 0 && !/[*?[\]{}]/.test(pat)) {
      throw new InputError(`no host or group named "${pat}"${didYouMean(pat, [...hostNames, ...inv.groups.keys()])}`, { file: inv.file });
    }
    return out;
  };
  let selected = new Set<string>();
  let first = true;
  for (const item of items) {
    if (item.startsWith('!')) {
      if (first) selected = new Set(hostNames);
      for (const h of expand(item.slice(1))) selected.delete(h);
    } else if (item.startsWith('&')) {
      const keep = expand(item.slice(1));
      selected = new Set([...selected].filter((h) => keep.has(h)));
    } else for (const h of expand(item)) selected.add(h);
    first = false;
  }
  // Inventory order, not pattern order: rolling upgrades go in the order the operator wrote hosts.
  return inv.hosts.filter((h) => selected.has(h.name));
}
