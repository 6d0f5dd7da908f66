import { quote } from '../../ssh/quote.js';
import type { Facts } from '../../facts/facts.js';
import type { ProbeResult } from '../../facts/probe.js';
import type { Action, PlanState } from '../types.js';

/** Package state through whichever of apt, dnf or yum the host has: read in the gathering round trip, changed in one command. */

/** Prints "name installed|absent" per package, with whichever package database the host has. */
export function packageProbe(names: string[]): string {
  const q = names.map(quote).join(' ');
  // One dpkg-query for every name (it prints nothing for a package it has never heard of).
  return `if command -v dpkg-query >/dev/null; then
  st=$'\\n'"$(dpkg-query -W -f='\${Package} \${db:Status-Status}\\n' ${q} 2>/dev/null)"$'\\n'
  for p in ${q}; do case "$st" in *$'\\n'"$p installed"$'\\n'*) echo "$p installed" ;; *) echo "$p absent" ;; esac; done
elif command -v rpm >/dev/null; then
  for p in ${q}; do if rpm -q "$p" >/dev/null 2>&1; then echo "$p installed"; else echo "$p absent"; fi; done
else echo "no package database" >&2; exit 3; fi`;
}

export function installedPackages(r: ProbeResult): Set<string> {
  const out = new Set<string>();
  for (const line of r.out.split('\n')) {
    const [name, st] = line.trim().split(' ');
    if (st === 'installed') out.add(name);
  }
  return out;
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
      throw new Error('no supported package manager (apt, dnf or yum) on this host');
  }
}

export function planPackages(names: string[], state: 'present' | 'absent', facts: Facts, r: ProbeResult, plan: PlanState): Action[] {
  if (r.code !== 0) throw new Error(`cannot read the package database: ${r.out.trim()}`);
  const have = installedPackages(r);
  const todo = names.filter((n) => (state === 'present' ? !have.has(n) : have.has(n)));
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
        if (res.code !== 0) throw new Error(`${facts.packageManager} failed (exit ${res.code}): ${res.stderr.trim().split('\n').slice(-4).join('\n')}`);
      },
    },
  ];
}
