/**
 * hoist's errors: every error it throws is a HoistError of one kind, and the kind decides the exit
 * code and the `error.kind` of `--json` output. An error that is no HoistError (a bug, a library's
 * own) is an internal one.
 *
 *   InputError        input        1   what the user gave hoist is wrong; no host touched
 *   HostError         host         2   a failure on one host (the run goes on for the others)
 *     LockHeldError                5   another hoist run holds the host's lock
 *     (HostKeyError)               6   the host key was unknown or changed (ssh/transport.ts)
 *   ControllerError   controller   3   the controller could not prepare the run (download, checksum, cache)
 *   InternalError     internal     1   a broken invariant: a bug in hoist
 *   InterruptedError  interrupted  130 (SIGINT) or 143 (SIGTERM)
 *
 * A host's failure normally ends in its host report, and the run's exit code comes from the reports
 * (runner/report.ts exitCodeOf); a HostError's own code is what it means when one ends the command.
 */
export type ErrorKind = 'input' | 'host' | 'controller' | 'internal' | 'interrupted';

/** Exit codes, for wrappers; src/cli/main.ts, docs/hoist-output.schema.json and the README list them too. */
export const EXIT = {
  ok: 0,
  input: 1,
  /** A bug in hoist: 1, as a usage error, since a wrapper can do nothing else about either. */
  internal: 1,
  hostFailed: 2,
  controller: 3,
  unreachable: 4,
  locked: 5,
  hostKey: 6,
  sigint: 130,
  sigterm: 143,
} as const;

export abstract class HoistError extends Error {
  abstract readonly kind: ErrorKind;
  abstract readonly exitCode: number;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** What the kind of an error gives: its own for a HoistError, internal for anything else. */
export function classify(e: unknown): { kind: ErrorKind; exitCode: number } {
  if (e instanceof HoistError) return { kind: e.kind, exitCode: e.exitCode };
  return { kind: 'internal', exitCode: EXIT.internal };
}

/** A problem with what the user gave hoist (inventory, playbook, flags): exit code 1, no host touched. */
export class InputError extends HoistError {
  readonly kind = 'input';
  readonly exitCode: number = EXIT.input;

  constructor(
    message: string,
    readonly location?: SourceLocation,
  ) {
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

/** The operator ended a prompt with no answer (Ctrl-D): the run stops, whatever asked. */
export class NoInputError extends InputError {
  constructor(what = 'no input') {
    super(what);
    this.name = 'NoInputError';
  }
}

/** A failure on one host; the run goes on for the others. */
export class HostError extends HoistError {
  readonly kind = 'host';
  readonly exitCode: number = EXIT.hostFailed;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HostError';
  }
}

/** Another hoist run holds the host (its holder as recorded on the host): refused, or waited for with --lock-wait. */
export class LockHeldError extends HostError {
  override readonly exitCode: number = EXIT.locked;

  constructor(
    message: string,
    readonly holder?: string,
  ) {
    super(message);
    this.name = 'LockHeldError';
  }
}

/** The controller could not prepare the run (a download, a checksum, the artifact cache): no host was changed. */
export class ControllerError extends HoistError {
  readonly kind = 'controller';
  readonly exitCode: number = EXIT.controller;
}

/** A broken invariant: hoist itself is wrong, not the input, a host or the controller's surroundings. */
export class InternalError extends HoistError {
  readonly kind = 'internal';
  readonly exitCode: number = EXIT.internal;
}

export type InterruptSignal = 'SIGINT' | 'SIGTERM';

/** The run stopped before any host worked (while downloading, say): nothing was changed. */
export class InterruptedError extends HoistError {
  readonly kind = 'interrupted';
  readonly exitCode: number;

  constructor(
    readonly signal: InterruptSignal,
    where: string,
  ) {
    super(`interrupted by ${signal} ${where}`);
    this.name = 'InterruptedError';
    this.exitCode = signal === 'SIGINT' ? EXIT.sigint : EXIT.sigterm;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
