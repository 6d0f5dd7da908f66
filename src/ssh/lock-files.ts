import { HOIST_STATE_DIR } from '../host-paths.js';

/** The lock's generation counter and holder record, as the gathering round trip reads them. */
export const LOCK_GENERATION = `${HOIST_STATE_DIR}/lock.gen`;
export const LOCK_HOLDER = `${HOIST_STATE_DIR}/lock.holder`;
