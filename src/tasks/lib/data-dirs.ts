import { quote } from '../../ssh/quote.js';
import { DATA_DIR_RECORD, DATA_DIR_RECORD_TMP, HOIST_STATE_DIR, SWEEP_TEMPS } from '../../host-paths.js';
import type { Action, CheckedPath, PlanState } from '../types.js';

/*
 * Data directories (a module's root and state directories) are hoist's only by its records
 * (DATA_DIR_RECORD): one it made, or one it took over because it was empty or held only the
 * software's own entries, or because the operator named it. A reset deletes a directory only where
 * the record says hoist created it, and takes only the software's entries from one it took over.
 */

/**
 * Bash: the record without `resolved`'s line, plus `how` for it when given. Written to a marked
 * temporary file and renamed, so a kill leaves the old record or the new one, and the next run's
 * SWEEP_TEMPS removes the temporary file.
 */
function rewriteRecord(resolved: string, how?: 'created' | 'adopted'): string {
  const q = quote(resolved);
  const add = how ? `; printf '%s\\t%s\\t%s\\n' ${how} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${q}` : '';
  const tmp = DATA_DIR_RECORD_TMP;
  return `mkdir -p ${HOIST_STATE_DIR} && { awk -F'\\t' -v p=${q} '$3 != p' ${DATA_DIR_RECORD} 2>/dev/null${add}; } > ${tmp} && mv -f ${tmp} ${DATA_DIR_RECORD}`;
}

/** Bash that succeeds when the record on the host says `how` for `resolved`. */
export function recordSays(resolved: string, how: 'created' | 'adopted'): string {
  return `awk -F'\\t' -v p=${quote(resolved)} -v h=${how} '$1 == h && $3 == p {f=1} END {exit !f}' ${DATA_DIR_RECORD} 2>/dev/null`;
}

/**
 * The actions that make the host's data directories hoist's before its software starts and fills
 * them: a missing one is created (mode `mode`) and recorded as created, an existing one without a
 * record (it passed the engine's checks: empty, the software's own data, or named by the operator)
 * is recorded as taken over.
 */
export function planDataDirs(state: PlanState, mode = 0o711): Action[] {
  const actions: Action[] = [];
  for (const d of state.paths.values()) {
    if (!d.data) continue;
    if (!d.exists) {
      state.pending = true;
      actions.push({
        kind: 'change',
        summary: `create ${d.variable} ${d.resolved}${d.resolved !== d.path ? ` (${d.path})` : ''}`,
        run: (c) =>
          // Recorded before it is made: a kill in between leaves a record of a missing directory, which the next run makes.
          c
            .check(
              `${SWEEP_TEMPS}\nif [ -e ${quote(d.resolved)} ]; then ${rewriteRecord(d.resolved, 'adopted')}; else ${rewriteRecord(d.resolved, 'created')} && mkdir -p -m ${mode.toString(8)} -- ${quote(d.resolved)}; fi`,
              `create ${d.resolved}`,
            )
            .then(() => undefined),
      });
    } else if (!d.record) {
      actions.push({
        kind: 'record',
        summary: `${d.variable} ${d.resolved} existed before hoist: recorded as taken over (a reset keeps the directory)`,
        run: (c) => c.check(`${SWEEP_TEMPS}\n${rewriteRecord(d.resolved, 'adopted')}`, `record ${d.resolved}`).then(() => undefined),
      });
    }
  }
  return actions;
}

/**
 * Bash that removes a data directory as far as the record allows, checked again on the host right
 * before: all of it where hoist created it, only `ownEntries` (globs) where it took it over, nothing
 * where it has no record. The record's line goes with what was removed.
 */
export function removeDataDirScript(d: CheckedPath, ownEntries: readonly string[]): string {
  const q = quote(d.resolved);
  if (d.record?.how === 'created') return `if ${recordSays(d.resolved, 'created')}; then rm -rf -- ${q} && ${rewriteRecord(d.resolved)}; fi`;
  if (d.record?.how === 'adopted') {
    const globs = ownEntries
      .map(
        (g) =>
          `${q}/${g
            .split(/([*?])/)
            .map((p) => (p === '*' || p === '?' ? p : p ? quote(p) : ''))
            .join('')}`,
      )
      .join(' ');
    return `if ${recordSays(d.resolved, 'adopted')}; then (shopt -s nullglob; for e in ${globs}; do rm -rf -- "$e"; done) && ${rewriteRecord(d.resolved)}; fi`;
  }
  return '';
}

/** What a reset with data does to `d`, for its summary and --diff; undefined: nothing (it doesn't exist). */
export function dataDirFate(d: CheckedPath): { diff: string; kept?: string } | undefined {
  if (!d.exists) return undefined;
  if (d.record?.how === 'created') return { diff: `-${d.resolved}/ (directory)` };
  if (d.record?.how === 'adopted')
    return {
      diff: `-${d.resolved}/* (the software's data; the directory existed before hoist and stays)`,
      kept: `${d.variable} ${d.resolved} stays (hoist took it over), its data goes`,
    };
  return { diff: ` ${d.resolved}/ (kept: hoist did not create it)`, kept: `${d.variable} ${d.resolved} kept: hoist did not create it` };
}
