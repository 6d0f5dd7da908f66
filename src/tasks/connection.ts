import type { HostConnection } from '../ssh/connection.js';

/**
 * What tasks and the runner use of a connection to a host: the SSH layer's HostConnection in a
 * run, a fake in unit tests of the runner and of tasks.
 */
export type Connection = Pick<
  HostConnection,
  'endpoint' | 'exec' | 'check' | 'upload' | 'serveFile' | 'receiveFile' | 'lock' | 'openUnixStream' | 'isClosed' | 'bytesPushed' | 'becomes' | 'isRoot'
>;
