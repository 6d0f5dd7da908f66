/** A problem with what the user gave hoist (inventory, playbook, flags): exit code 1, no host touched. */
export class InputError extends Error {
  constructor(message: string, readonly location?: SourceLocation) {
    super(location ? `${formatLocation(location)}: ${message}` : message);
    this.name = 'InputError';
  }
}

export interface SourceLocation {
  file: string;
  line?: number;
  key?: string;
}

export function formatLocation(loc: SourceLocation): string {
  let s = loc.file;
  if (loc.line !== undefined) s += `:${loc.line}`;
  if (loc.key) s += ` (${loc.key})`;
  return s;
}

/** Several input problems reported together so a user fixes them in one pass. */
export class InputErrors extends InputError {
  constructor(readonly errors: InputError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'InputErrors';
  }
}

/** A failure on one host; the run goes on for the others. */
export class HostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Another hoist run holds the host (its holder as recorded on the host): refused, or waited for with --lock-wait. */
export class LockHeldError extends HostError {
  constructor(message: string, readonly holder?: string) {
    super(message);
    this.name = 'LockHeldError';
  }
}
