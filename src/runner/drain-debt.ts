import path from 'node:path';
import type { Connection } from '../tasks/connection.js';
import { loadPlaybook, type Hook, type Playbook } from '../playbook/playbook.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import { DRAIN_RECORD } from '../host-paths.js';
import { fileRead, type FileRead } from '../facts/reads.js';
import { errorMessage, HostError } from '../util/errors.js';
import {
  clearControllerRecord,
  describeDebt,
  hooksDigest,
  manualFix,
  newDrainRecord,
  noteOwing,
  noteSettled,
  parseDrainRecord,
  readControllerRecord,
  writeControllerRecord,
  type DrainRecord,
} from './drain-journal.js';

/** The gathering round trip's read of the host's drain record. */
export const DRAIN_PROBE = '__drain';
export const drainProbe = (): FileRead => fileRead(DRAIN_RECORD, 'text');

/** The owed hooks can't be run by hoist: why, with the manual way out. */
export class UnpayableDebt extends HostError {}

/**
 * One host's side of the drain journal (drain-journal.ts) during a run: the after_host hooks it owes,
 * from an earlier run or since this run's before_host hooks started, and why it is left drained.
 */
export class HostDebt {
  /** The record of the debt, while there is one. */
  owes?: DrainRecord;
  /** The host's own record, as the last read found it. */
  private hostRecord?: DrainRecord;
  /** Why the host is left drained, when it is. */
  why?: string;

  constructor(
    private readonly host: string,
    private readonly address: string,
  ) {}

  /** The controller's record, else the host's: read before connecting, and again under the host lock. */
  refresh(): void {
    this.owes = readControllerRecord(this.host, this.address) ?? this.hostRecord;
  }

  /** What the gathering read of DRAIN_RECORD found; a record that can't be parsed is an error naming the file. */
  readFromHost(content: Buffer | undefined): void {
    this.hostRecord = content?.length ? parseDrainRecord(content.toString('utf8'), DRAIN_RECORD) : undefined;
  }

  /** Whether either side knows of a debt (the run then takes the host lock). */
  get seen(): boolean {
    return !!(this.owes || this.hostRecord);
  }

  /**
   * Written before the first before_host hook starts: on the controller, then on the host. When the
   * host's copy can't be written the debt is dropped again (no hook ran) and the error thrown.
   */
  async record(conn: Connection, pb: Playbook): Promise<void> {
    if (!pb.afterHost.length) return;
    const rec = newDrainRecord(this.host, this.address, pb.file, pb.name, pb.afterHost);
    writeControllerRecord(rec);
    this.owes = rec;
    noteOwing(rec);
    try {
      await conn.upload(Buffer.from(`${JSON.stringify(rec, null, 2)}\n`), DRAIN_RECORD, { mode: 0o600 });
    } catch (e) {
      this.clearLocally();
      throw e;
    }
  }

  /** The after_host hooks succeeded: cleared on the controller, then on the host; a note when the host's copy stays. */
  async settle(conn: Connection): Promise<string | undefined> {
    if (!this.owes) return undefined;
    this.clearLocally();
    this.hostRecord = undefined;
    return conn.check(`rm -f ${DRAIN_RECORD}`, 'removing the drain record').then(
      () => undefined,
      (e: unknown) => `the host's drain record (${DRAIN_RECORD}) could not be removed (${errorMessage(e)}): the next run runs the after_host hooks once more`,
    );
  }

  private clearLocally(): void {
    clearControllerRecord(this.host, this.address);
    noteSettled(this.host);
    this.owes = undefined;
  }

  /**
   * The owed hooks as the owing playbook has them now (this run's, or loaded again), and whether they
   * changed since the drain. Throws UnpayableDebt when that playbook can't be read or has none.
   */
  async owedHooks(current: Playbook, catalog: TaskCatalog | undefined): Promise<{ hooks: Hook[]; changed: boolean }> {
    const rec = this.owes!;
    noteOwing(rec);
    const cant = (why: string) => {
      this.why = `owes ${describeDebt(rec)}, which hoist can't run: ${why}; ${manualFix(rec)}`;
      return new UnpayableDebt(this.why);
    };
    let hooks: Hook[];
    if (path.resolve(current.file) === rec.playbook) hooks = current.afterHost;
    else if (!catalog) throw cant("its playbook is not this run's");
    else {
      try {
        hooks = (await loadPlaybook(rec.playbook, catalog)).afterHost;
      } catch (e) {
        throw cant(`the playbook ${rec.playbook} can't be loaded (${errorMessage(e)})`);
      }
    }
    if (!hooks.length) throw cant(`the playbook ${rec.playbook} has no after_host hooks now`);
    return { hooks, changed: hooksDigest(hooks) !== rec.hooksSha256 };
  }

  /** Why the host is left drained at the end of the run, or undefined when it owes nothing. */
  stillDrained(check: boolean): string | undefined {
    if (!this.owes) return undefined;
    return (
      this.why ??
      (check ? `owes ${describeDebt(this.owes)}; a check does not run them, the next apply runs them first` : `${describeDebt(this.owes)} did not run`)
    );
  }
}
