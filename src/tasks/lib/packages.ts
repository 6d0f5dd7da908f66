import { quote } from '../../ssh/quote.js';
import type { Facts } from '../../facts/facts.js';
import type { ProbeResult } from '../../facts/probe.js';
import type { Action, PlanState } from '../types.js';
import { HostError } from '../../util/errors.js';

/** Package state through whichever of apt, dnf or yum the host has: read in the gathering round trip, changed in one command. */

export function installedPackages(r: ProbeResult): ReadonlySet<string> {
  if (r.installed) return r.installed;
  throw new HostError(`cannot read the package database: ${r.out.trim() || `exit ${r.code}`}`);
}

export function installScript(pm: Facts['packageManager'], names: string[], state: 'present' | 'absent'): string {
  const q = names.map(quote).join(' ');
  switch (pm) {
    case 'apt':
      return state === 'present'
        ? // Fresh hosts often have no package lists yet; update only when apt can't find a package.
          `export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends ${q} 2>/dev/null || { apt-get update -q && apt-get install -y -q --no-install-recommends ${q}; }`
        : `DEBIAN_FRONTEND=noninteractive apt-get remove -y -q ${q}`;
    case 'dnf':
    case 'yum':
      return `${pm} ${state === 'present' ? 'install' : 'remove'} -y ${q}`;
    default:
      throw new HostError('no supported package manager (apt, dnf or yum) on this host');
  }
}

/** Removes installed packages with the host's package manager. */
export function removeScript(pm: Facts['packageManager'], names: string[]): string {
  return installScript(pm, names, 'absent');
}

export function planPackages(names: string[], state: 'present' | 'absent', facts: Facts, r: ProbeResult, plan: PlanState): Action[] {
  const have = installedPackages(r);
  // What an earlier task of this plan installs or removes is taken as done by then.
  const present = (n: string) => (plan.packages.has(n) ? plan.packages.get(n) === 'present' : have.has(n));
  const todo = names.filter((n) => (state === 'present' ? !present(n) : present(n)));
  for (const n of names) plan.packages.set(n, state);
  if (todo.length === 0) return [];
  plan.pending = true;
  const script = installScript(facts.packageManager, todo, state);
  return [
    {
      kind: 'change',
      summary: `${state === 'present' ? 'install' : 'remove'} ${todo.join(', ')} (${facts.packageManager})`,
      async run(conn, ctx) {
        const res = await conn.exec(script, { timeoutMs: 15 * 60_000 });
        ctx.log.log(conn.endpoint.name, res.stdout + res.stderr);
        if (res.code !== 0) throw new HostError(`${facts.packageManager} failed (exit ${res.code}): ${res.stderr.trim().split('\n').slice(-4).join('\n')}`);
      },
    },
  ];
}
