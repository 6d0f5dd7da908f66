import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hook } from '../playbook/playbook.js';
import { DRAIN_RECORD } from '../host-paths.js';
import { HostError } from '../util/errors.js';
import { writePrivateFile } from '../util/private-dir.js';

/**
 * The drain journal: a host whose before_host hooks ran owes its after_host hooks until they
 * succeed. The debt is written down before the first before_host hook starts, on the controller
 * (one file per host under $XDG_STATE_HOME/hoist/drained, 0600, replaced atomically) and on the host
 * (DRAIN_RECORD), so that whatever ends hoist (Ctrl-C, kill -9, a lost controller or host) the next
 * run of any playbook on that host finds it and runs the owed hooks before anything else.
 */
export interface DrainRecord {
  host: string;
  address: string;
  /** The playbook whose hooks are owed: its absolute path on the controller that drained. */
  playbook: string;
  playbookName: string;
  /** The after_host hooks as they were when the drain started, and their digest. */
  hooks: Hook[];
  hooksSha256: string;
  /** When the before_host hooks started, and who ran them. */
  since: string;
  by: string;
}

export const hooksDigest = (hooks: readonly Hook[]) =>
  createHash('sha256')
    .update(JSON.stringify(hooks.map((h) => [h.run, h.on, h.timeout])))
    .digest('hex');

export function newDrainRecord(host: string, address: string, playbookFile: string, playbookName: string, hooks: Hook[]): DrainRecord {
  return {
    host,
    address,
    playbook: path.resolve(playbookFile),
    playbookName,
    hooks,
    hooksSha256: hooksDigest(hooks),
    since: new Date().toISOString(),
    by: `${os.userInfo().username}@${os.hostname()} pid ${process.pid}`,
  };
}

/** The directory of the controller's records. */
export function drainJournalDir(): string {
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'hoist', 'drained');
}

/**
 * One file per host, named for the inventory name and the address: two fleets that both call a
 * host h1 don't share a record.
 */
export function controllerRecordPath(host: string, address: string): string {
  const id = createHash('sha256').update(`${host}\0${address}`).digest('hex').slice(0, 12);
  return path.join(drainJournalDir(), `${host.replace(/[^A-Za-z0-9._-]/g, '_')}-${id}.json`);
}

/**
 * Written synchronously and renamed into place: a signal handler that exits the process can't run
 * between the write and the rename, and a reader never sees half a record.
 */
export function writeControllerRecord(rec: DrainRecord): string {
  const file = controllerRecordPath(rec.host, rec.address);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writePrivateFile(file, [Buffer.from(`${JSON.stringify(rec, null, 2)}\n`)]);
  return file;
}

/** The controller's record for a host, undefined when it owes nothing; an unreadable record is an error. */
export function readControllerRecord(host: string, address: string): DrainRecord | undefined {
  const file = controllerRecordPath(host, address);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseDrainRecord(text, file);
}

export function clearControllerRecord(host: string, address: string): void {
  rmSync(controllerRecordPath(host, address), { force: true });
}

/** A record read back (controller file or the host's DRAIN_RECORD), checked field by field. */
export function parseDrainRecord(text: string, where: string): DrainRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HostError(`${where}: not a drain record (${(e as Error).message})`);
  }
  const r = v as Partial<DrainRecord>;
  const str = (x: unknown) => typeof x === 'string';
  const hookOk = (h: unknown) =>
    typeof h === 'object' &&
    h !== null &&
    str((h as Hook).run) &&
    ((h as Hook).on === 'controller' || (h as Hook).on === 'host') &&
    typeof (h as Hook).timeout === 'number';
  if (
    !str(r.host) ||
    !str(r.address) ||
    !str(r.playbook) ||
    !str(r.playbookName) ||
    !str(r.since) ||
    !str(r.by) ||
    !str(r.hooksSha256) ||
    !Array.isArray(r.hooks) ||
    !r.hooks.every(hookOk)
  ) {
    throw new HostError(`${where}: not a drain record (fields missing or of the wrong type)`);
  }
  return r as DrainRecord;
}

/** How a record reads in a sentence: "the after_host hooks of upgrade (/path/upgrade.toml), owed since … (by …)". */
export function describeDebt(rec: DrainRecord): string {
  return `the after_host hooks of playbook ${rec.playbookName} (${rec.playbook}), owed since its before_host hooks started at ${rec.since} (${rec.by})`;
}

/** The manual way out when hoist can't run the owed hooks itself. */
export function manualFix(rec: DrainRecord): string {
  const cmds = rec.hooks.map((h) => `${h.on === 'host' ? 'on the host: ' : ''}${h.run}`).join('; ');
  return `run ${cmds ? `"${cmds}"` : 'the after_host hooks'} by hand (HOIST_HOST=${rec.host}), then remove ${controllerRecordPath(rec.host, rec.address)} on this controller and ${DRAIN_RECORD} on the host`;
}

/** For a host the run did not reach: the debt an earlier run left on this controller, in a sentence. */
export function owedBefore(host: string, address: string): string | undefined {
  try {
    const rec = readControllerRecord(host, address);
    return rec && `${describeDebt(rec)} did not run; the next run that reaches ${host} runs them first`;
  } catch (e) {
    return `${(e as Error).message}`;
  }
}

/** Hosts of this process that owe their after_host hooks right now: for an interrupt's message. */
const owing = new Map<string, DrainRecord>();

export function noteOwing(rec: DrainRecord): void {
  owing.set(rec.host, rec);
}

export function noteSettled(host: string): void {
  owing.delete(host);
}

/** The hosts this run drained and has not uncordoned yet, with the playbook they owe hooks to. */
export function stillDrained(): { host: string; playbook: string; since: string }[] {
  return [...owing.values()].map((r) => ({ host: r.host, playbook: r.playbookName, since: r.since }));
}
