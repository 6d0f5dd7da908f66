/**
 * Every place hoist itself writes on a host, in one module: the SSH layer's locks and temporary
 * files, the engine's artifacts and service stamps, and each module's own state directory.
 */

/** Where hoist keeps its own state on a host: locks, records of what it installed, staged artifacts. */
export const HOIST_STATE_DIR = '/var/lib/hoist';

/** Marks every temporary file hoist makes on a host, so a later run can recognise and remove leftovers. */
export const TEMP_MARK = '.hoist-tmp-';

/** Downloaded release files, content-addressed (`<sha256>-<name>`). */
export const ARTIFACT_DIR = `${HOIST_STATE_DIR}/artifacts`;

/** What each service was last (re)started with, so a restart follows state rather than this run's changes. */
export const STAMP_DIR = `${HOIST_STATE_DIR}/stamps`;

/** Where releases are unpacked before their files are moved into place. */
export const STAGING_DIR = `${HOIST_STATE_DIR}/staging`;

/** A module's own records on a host (what it installed, which files it manages). */
export function moduleStateDir(module: string): string {
  return `${HOIST_STATE_DIR}/${module}`;
}
