/**
 * Every place hoist itself writes on a host, in one module: the SSH layer's locks and temporary
 * files, the engine's artifacts and service stamps, and each module's own state directory.
 */

/** Where hoist keeps its own state on a host: locks, records of what it installed, staged artifacts. */
export const HOIST_STATE_DIR = '/var/lib/hoist';

/** Marks every temporary file hoist makes on a host, so a later run can recognise and remove leftovers. */
export const TEMP_MARK = '.hoist-tmp-';

/**
 * The temporary name, as a bash word, of a file a script moves into place: beside it (so the rename
 * is atomic) and carrying the mark, so that once journalled in TEMP_JOURNAL, what a kill leaves is
 * swept by the next run. `shellVar` names the variable holding the final path.
 */
export const tempBeside = (shellVar: string) => `"\${${shellVar}%/*}/${TEMP_MARK}new.\${${shellVar}##*/}"`;

/** Downloaded release files, content-addressed (`<sha256>-<name>`). */
export const ARTIFACT_DIR = `${HOIST_STATE_DIR}/artifacts`;

/** What each service was last (re)started with, so a restart follows state rather than this run's changes. */
export const STAMP_DIR = `${HOIST_STATE_DIR}/stamps`;

/** Where releases are unpacked before their files are moved into place. */
export const STAGING_DIR = `${HOIST_STATE_DIR}/staging`;

/**
 * A host whose before_host hooks (a drain) ran and whose after_host hooks (the uncordon) have not yet
 * succeeded: the playbook and hooks it owes, as JSON. Removed once the after_host hooks succeeded.
 */
export const DRAIN_RECORD = `${HOIST_STATE_DIR}/drained.json`;

/** A module's own records on a host (what it installed, which files it manages). */
export function moduleStateDir(module: string): string {
  return `${HOIST_STATE_DIR}/${module}`;
}

/**
 * Every temporary file hoist creates on a host is listed here before it is written, so that the
 * leftovers of a killed run can be found and removed by the next one wherever they are.
 */
export const TEMP_JOURNAL = `${HOIST_STATE_DIR}/temporary-files`;

/**
 * The data directories hoist made for a module (or took over, empty or named by the operator), one
 * "created|adopted TAB time TAB path" line each: a reset deletes a directory only when this says
 * hoist created it. Kept outside any module's own directory, which a reset without data removes.
 */
export const DATA_DIR_RECORD = `${HOIST_STATE_DIR}/data-dirs`;

/** The record being rewritten (written beside it, then renamed); a kill in between leaves it for SWEEP_TEMPS. */
export const DATA_DIR_RECORD_TMP = `${HOIST_STATE_DIR}/${TEMP_MARK}data-dirs`;

/**
 * Removes the temporary files a killed run left behind (those in the journal that still exist and carry
 * the mark) and empties the journal. Safe only under commands.lock, which every privileged command holds:
 * no upload still running can own one of them.
 */
export const SWEEP_TEMPS = `if [ -s ${TEMP_JOURNAL} ]; then while IFS= read -r t; do case "\${t##*/}" in ${TEMP_MARK}*) rm -rf -- "$t";; esac; done < ${TEMP_JOURNAL}; : > ${TEMP_JOURNAL}; fi; [ -e ${DATA_DIR_RECORD_TMP} ] && rm -f ${DATA_DIR_RECORD_TMP}; true`;
