/** Where hoist keeps its own state on a host: locks, records of what it installed, staged artifacts. */
export const HOIST_STATE_DIR = '/var/lib/hoist';

/** Marks every temporary file hoist makes on a host, so a later run can recognise and remove leftovers. */
export const TEMP_MARK = '.hoist-tmp-';
