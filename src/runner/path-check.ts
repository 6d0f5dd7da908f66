import { hostPathsScript, parseHostPaths, type HostPaths } from '../facts/paths.js';
import { homeConflict, resolvedPathProblem } from '../util/path-guard.js';
import type { CheckedPath, HostPathSpec } from '../tasks/types.js';
import type { ProbeResult } from '../facts/probe.js';
import { printable } from '../util/printable.js';
import { HostError } from '../util/errors.js';

/** The probe that resolves a module's paths on the host, in the gathering round trip. */
export function pathProbe(spec: HostPathSpec): string {
  return hostPathsScript(
    spec.paths.map((p) => p.path),
    spec.paths.filter((p) => p.data).map((p) => p.path),
    spec.dataEntries,
  );
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * The module's paths as the host has them, checked: each refusal is a sentence naming the host, the
 * variable, its value and where it was set, what it resolves to, and the fix. Pure, for unit tests.
 */
export function checkHostPaths(
  spec: HostPathSpec,
  found: HostPaths,
  host: string,
  origin: (variable: string) => string | undefined,
): { problems: string[]; checked: CheckedPath[] } {
  const problems: string[] = [];
  const checked: CheckedPath[] = [];
  for (const want of spec.paths) {
    const r = found.paths.get(want.path);
    if (!r) continue;
    const from = origin(want.variable);
    const lead = `${host}: ${want.variable} = ${JSON.stringify(want.path)}${from ? ` (set in ${from})` : ''}`;
    // What the host reports (a symlink's target, a user's name) may hold anything: escaped before it is shown.
    const refuse = (what: string, fix: string) => problems.push(printable(`${lead} ${what}; nothing was changed on ${host}. Fix: ${fix}`));
    const guard = resolvedPathProblem(r, spec.protected);
    if (guard) {
      refuse(
        guard,
        `set ${want.variable} to a directory of its own whose path resolves on the host outside system directories${r.symlinks.length ? ', or replace the symlink' : ''}`,
      );
      continue;
    }
    const record = want.data ? found.records.find((x) => x.path === r.resolved) : undefined;
    const allowed = spec.allowData.includes(want.path) || spec.allowData.includes(r.resolved);
    const named = `${spec.allowVariable} = ${JSON.stringify(want.path)}`;
    const which = `resolves to ${r.resolved}, which`;
    if (want.data && r.exists && !r.dir) {
      refuse(`${which} is not a directory`, `point ${want.variable} at a directory`);
      continue;
    }
    if (want.data && !allowed) {
      const home = homeConflict(r.resolved, found.homes);
      if (home) {
        const how =
          home.how === 'is'
            ? `is the home of user ${home.user}`
            : home.how === 'in'
              ? `lies in the home of user ${home.user} (${home.home})`
              : `contains the home of user ${home.user} (${home.home})`;
        refuse(
          `${which} ${how}: a reset with remove_data would delete a user's files`,
          `choose a directory outside users' homes, or, if it is meant to hold this data, name it: ${named}`,
        );
        continue;
      }
      if (r.dir && !record && (r.foreignCount ?? 0) > 0) {
        const shown = (r.foreign ?? []).map((n) => JSON.stringify(n)).join(', ');
        refuse(
          `${which} is an existing directory hoist did not create, holding ${plural(r.foreignCount!, 'entry', 'entries')} its data never has (${shown}${r.foreignCount! > (r.foreign ?? []).length ? ', …' : ''}): a reset with remove_data would take them`,
          `choose a new or empty directory, or, if it is meant to hold this data, name it: ${named}`,
        );
        continue;
      }
    }
    checked.push({ ...r, variable: want.variable, data: !!want.data, ...(record ? { record } : {}) });
  }
  return { problems, checked };
}

/** Parses the probe's result; a host whose paths can't be read can't be planned. */
export function readHostPaths(spec: HostPathSpec, r: ProbeResult): HostPaths {
  if (r.code !== 0) throw new HostError(`the host's paths could not be resolved: ${r.out.replace(/\0/g, ' ').trim() || `exit ${r.code}`}`);
  return parseHostPaths(
    r.out,
    spec.paths.map((p) => p.path),
  );
}
