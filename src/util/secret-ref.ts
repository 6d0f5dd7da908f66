import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addSecret } from './redact.js';
import { s, type Schema } from './schema.js';
import { InputError } from './errors.js';

/**
 * A credential named instead of written: `{ env = "NAME" }`, `{ file = "path" }` (mode 0600, one
 * trailing newline dropped) or `{ command = "pass show registry/ci" }` (run once per hoist run
 * on the controller through /bin/sh, its stdout the value). Resolved before any host is
 * contacted and registered as a secret, so it is redacted everywhere like a written one.
 */
export type SecretRef = { env: string } | { file: string } | { command: string };

const KINDS = ['env', 'file', 'command'] as const;

/** A reference as a schema, for settings that accept only a reference (a password never written in the file). */
export const secretRefSchema = s.union<SecretRef>(
  'a secret reference: { env = "NAME" }, { file = "path" } or { command = "…" }',
  s.object({ env: s.string(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }) as Schema<SecretRef>,
  s.object({ file: s.string(/./, 'a path') }) as Schema<SecretRef>,
  s.object({ command: s.string(/./, 'a command') }) as Schema<SecretRef>,
);

/** A reference and the place it was written, for messages. */
export interface LocatedSecretRef {
  ref: SecretRef;
  /** file:line (key) */
  at: string;
}

/** The reference `v` is, or undefined when it is not a table of exactly one of env/file/command with a string. */
export function secretRefOf(v: unknown): SecretRef | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1 || !(KINDS as readonly string[]).includes(keys[0])) return undefined;
  const value = (v as Record<string, unknown>)[keys[0]];
  if (typeof value !== 'string' || value === '') return undefined;
  return { [keys[0]]: value } as SecretRef;
}

export function describeSecretRef(r: SecretRef): string {
  if ('env' in r) return `environment variable ${r.env}`;
  if ('file' in r) return `file ${r.file}`;
  return `command ${JSON.stringify(r.command)}`;
}

/** A reference that can't be resolved; the message says which and why, never a value. */
export class SecretRefError extends InputError {}

const resolved = new Map<string, string>();
const COMMAND_TIMEOUT_MS = 60_000;

/** The value behind `r`; a command runs once per process however many hosts or keys name it. */
export function resolveSecretRef(r: SecretRef): string {
  const key = JSON.stringify(r);
  const known = resolved.get(key);
  if (known !== undefined) return known;
  const value = read(r);
  if (value === '') throw new SecretRefError(`${describeSecretRef(r)} gave an empty value`);
  addSecret(value);
  resolved.set(key, value);
  return value;
}

function read(r: SecretRef): string {
  if ('env' in r) {
    const v = process.env[r.env];
    if (v === undefined) throw new SecretRefError(`environment variable ${r.env} is not set`);
    return v;
  }
  if ('file' in r) {
    const file = r.file.startsWith('~/') ? path.join(os.homedir(), r.file.slice(2)) : path.resolve(r.file);
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch (e) {
      throw new SecretRefError(`file ${file} can't be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (mode & 0o077)
      throw new SecretRefError(`file ${file} is readable by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}`);
    return stripNewline(readFileSync(file, 'utf8'));
  }
  try {
    const out = execFileSync('/bin/sh', ['-c', r.command], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: COMMAND_TIMEOUT_MS,
      maxBuffer: 1 << 20,
    });
    return stripNewline(out);
  } catch (e) {
    const err = e as { status?: number | null; signal?: string | null; stderr?: string };
    const why = err.signal
      ? `was stopped by ${err.signal}${err.signal === 'SIGTERM' ? ` after ${COMMAND_TIMEOUT_MS / 1000} s` : ''}`
      : `exited with ${err.status ?? '?'}`;
    // stderr is the command's own message (vault, pass, sops), not the secret it failed to print.
    const said = (err.stderr ?? '').trim().split('\n').slice(-1)[0];
    throw new SecretRefError(`command ${JSON.stringify(r.command)} ${why}${said ? `: ${said}` : ''}`);
  }
}

function stripNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}
