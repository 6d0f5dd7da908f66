import type { Facts } from '../facts/facts.js';
import type { Probe, ProbeResult } from '../facts/probe.js';
import type { DataDirRecord, ResolvedPath } from '../facts/paths.js';
import type { InventoryHost, Vars } from '../inventory/inventory.js';
import type { Connection } from './connection.js';
import type { ObjectSchema, InferShape, Shape } from '../util/schema.js';
import type { Logger } from '../util/log.js';
import type { Artifact } from '../artifacts/artifact.js';
import type { Slot } from './slot.js';
import { RollbackPlan } from './rollback.js';

export interface RunOptions {
  check: boolean;
  diff: boolean;
  /** Never touch the network on the controller (artifacts must be cached). */
  offline: boolean;
}

/** Controller-side services shared by all hosts of a run. */
export interface Controller {
  playbookDir: string;
  inventoryDir: string;
  cacheDir?: string;
  log: Logger;
  /** Reports download progress to the output layer. */
  progress(label: string, done: number, total: number | undefined): void;
  /**
   * Puts a file the controller holds onto `conn`'s host: copied from a host that received it earlier
   * in the run when `how.peers` allows, else sent by `how.push`. Resolves with where it came from.
   */
  deliver(conn: Connection, file: DeliveredFile, how: DeliverOptions): Promise<string>;
}

/** A file to put on a host, named by content. */
export interface DeliveredFile {
  name: string;
  sha256: string;
  size: number;
  remotePath: string;
}

export interface DeliverOptions {
  /** Whether hosts that already hold the file may pass it on to this one. */
  peers: boolean;
  /** The address other hosts reach this host at, once it holds the file. */
  peerAddress: string;
  /** Sends the file from the controller (re-verified first). */
  push(): Promise<void>;
}

/**
 * What the plan of one host predicts, shared by the tasks of that host in order: a later task
 * (a service restart, say) decides from what earlier tasks will change, before anything runs.
 * Values one task hands another travel in typed slots (see slot.ts), declared by both tasks.
 */
export class PlanState {
  /** Path → sha256 the file will have once the plan is applied. */
  readonly files = new Map<string, string>();
  /** Paths whose content the plan changes (a unit file among them means a daemon-reload). */
  readonly changedFiles = new Set<string>();
  /** Path → content the file will have, where the planning task knew it (not for secrets): what a task editing the same file starts from. */
  readonly fileContents = new Map<string, Buffer>();
  /** Whether any earlier task of this host has a change pending. */
  pending = false;
  /**
   * What earlier tasks leave the host with besides files, so a later task plans with the host as it
   * will be rather than as it was read: kernel modules present (loaded or built in), packages
   * installed or removed, kernel parameters set, services running or stopped.
   */
  readonly kernelModules = new Set<string>();
  readonly packages = new Map<string, 'present' | 'absent'>();
  readonly sysctls = new Map<string, string>();
  readonly services = new Map<string, 'running' | 'stopped'>();
  /** Files actually replaced during apply, with whether they existed before: what a rollback restores. */
  readonly appliedFiles = new Map<string, boolean>();
  /**
   * Files replaced during apply that held or hold credentials (a registry password in config.toml):
   * their .hoist-prev copies are removed once the host's run succeeded, verification included, so an
   * old password doesn't outlive its change. Until then they are what a rollback restores.
   */
  readonly secretBackups = new Set<string>();
  /** Steps that undo this host's changes when it fails after some were applied; each task adds its own. */
  readonly rollback = new RollbackPlan();
  /**
   * The modules' path variables as this host resolved them while planning, by variable: every
   * command an action sends checks first that each still resolves the same (see facts/paths.ts).
   */
  readonly paths = new Map<string, CheckedPath>();
}

/** A module's path variable, resolved on the host and accepted by the guard. */
export interface CheckedPath extends ResolvedPath {
  variable: string;
  /** A data directory (see HostPathSpec). */
  data: boolean;
  /** hoist's record of having made or taken over this data directory, if it has one. */
  record?: DataDirRecord;
}

/**
 * The paths a module writes under or deletes, as its settings name them. The engine resolves them on
 * the host while planning and refuses a host where one resolves into a system directory, hoist's
 * own, or through someone's symlink into one. A data directory (filled by the module's software,
 * deleted by a reset with its data) must besides lie outside every user's home and be new, empty,
 * hoist's own by its records, or hold only the software's own entries, unless the operator names
 * it in `allowVariable`.
 */
export interface HostPathSpec {
  paths: { variable: string; path: string; data?: boolean }[];
  /** Data directories the operator named as such, spelled or resolved. */
  allowData: readonly string[];
  /** The variable that names them, for the fix in a refusal. */
  allowVariable: string;
  /** Directories of the module's own that no path may be or contain. */
  protected: readonly { dir: string; what: string }[];
  /** Globs of the names the module's software makes in a data directory. */
  dataEntries: readonly string[];
}

/** Per-host context every task phase sees; `settings` is what the task's module made of the host's variables. */
export interface PrepareContext<M = undefined> {
  host: InventoryHost;
  vars: Vars;
  options: RunOptions;
  controller: Controller;
  settings: M;
}

export interface PlanContext<R, M = undefined> extends PrepareContext<M> {
  facts: Facts;
  prepared: R;
  state: PlanState;
  probe(id: string): ProbeResult;
  /** What the task's live() produced (an Error if it failed), or undefined without one. */
  live: Promise<unknown> | undefined;
}

export interface ApplyContext {
  options: RunOptions;
  log: Logger;
  state: PlanState;
  /** Free text the task wants in the recap (e.g. verification results). */
  note(line: string): void;
}

export interface Action {
  /**
   * 'change' alters the host; 'check' only reads it (verification) and never counts as changed;
   * 'record' is hoist's own bookkeeping on the host (a stamp, a list of managed files): done in a real
   * run, skipped under --check, never shown as a change.
   */
  kind: 'change' | 'check' | 'record';
  summary: string;
  /** Unified diff shown by --diff; absent for binaries and for files holding secrets. */
  diff?: string;
  /**
   * Set on a change that interrupts what runs on the host (restarting a running service): what it
   * does. Hosts with such a change go `restart_batch` at a time (runner/restart-gate.ts).
   */
  disruptive?: string;
  run(conn: Connection, ctx: ApplyContext): Promise<void>;
}

export interface TaskPlan {
  actions: Action[];
  /** Set when the task has nothing to do on this host by design (e.g. crictl not installed). */
  skipped?: string;
  /** What the task found worth saying without changing anything (a module built into the kernel). */
  notes?: string[];
}

export interface TaskDefinition<S extends ObjectSchema<Shape>, R = undefined, M = undefined> {
  name: string;
  summary: string;
  params: S;
  /** Plan-time values this task reads from earlier tasks; the playbook loader checks they come first. */
  needs?: readonly Slot<unknown>[];
  /** Plan-time values this task hands to later tasks. */
  provides?: readonly Slot<unknown>[];
  /** A read-only health check: what `hoist verify` runs of a playbook. */
  verifies?: boolean;
  /** Release files the task would download for these settings, so `hoist fetch` can fill the cache ahead of time. */
  artifacts?(params: InferShape<S['shape']>, ctx: PrepareContext<M>): Artifact[];
  /** Controller-side preparation (downloads, local files, rendering) done before any host is touched. */
  prepare?(params: InferShape<S['shape']>, ctx: PrepareContext<M>): Promise<R>;
  /**
   * Read-only work over the connection that isn't a shell snippet (a gRPC call through a
   * forwarded socket), started as soon as the host is connected, alongside the gathering round trip.
   */
  live?(params: InferShape<S['shape']>, ctx: PrepareContext<M> & { prepared: R; conn: Connection }): Promise<unknown>;
  /** Read-only shell snippets and file or package reads, keyed by id, all in the host's single gathering round trip. */
  probes?(params: InferShape<S['shape']>, ctx: PrepareContext<M> & { prepared: R }): Record<string, Probe>;
  plan(params: InferShape<S['shape']>, ctx: PlanContext<R, M>): TaskPlan | Promise<TaskPlan>;
}

/** The catalogue stores tasks of every parameter shape and module side by side. */
export type AnyTask = TaskDefinition<ObjectSchema<Shape>, unknown, unknown>;

export function defineTask<S extends ObjectSchema<Shape>, R = undefined, M = undefined>(def: TaskDefinition<S, R, M>): TaskDefinition<S, R, M> {
  return def;
}

/** Where a problem with a module's variables lies: the variable's key path (`registries.docker.io.mirrors[0]`). */
export interface SettingsIssue {
  path: (string | number)[];
  message: string;
}

/**
 * A module: tasks for one piece of software, the variables they read (each with its schema) and
 * what the module makes of them. The engine validates a host's variables against `variables`,
 * then calls `settings` once per host whose play uses the module, before any connection.
 */
export interface TaskModule<V extends Shape = Shape, M = unknown> {
  name: string;
  variables: V;
  /** Turns a host's checked variables into the module's settings, reporting every problem by key path. */
  settings(vars: InferShape<V>, report: (issue: SettingsIssue) => void): M | undefined;
  /**
   * The credentials in a host's variables as written, found before any check: the engine registers
   * them as secrets first, so neither a problem message nor a listing of the variables shows one,
   * whatever else is wrong with them (a mistake beside them leaves them out of the settings).
   */
  credentialsIn?(vars: Readonly<Record<string, unknown>>): string[];
  /** The host paths its tasks write under or delete, from its settings: see HostPathSpec. */
  hostPaths?(settings: M): HostPathSpec;
  tasks: readonly TaskDefinition<ObjectSchema<Shape>, unknown, M>[];
  /**
   * Checks across the hosts of a `hoist verify` run that uses the module, on the facts each host
   * reported: what no single host can see (two nodes with one product_uuid). Each problem names its host.
   */
  fleetChecks?(hosts: readonly { name: string; facts: Facts }[]): { host: string; problem: string }[];
}

export function defineModule<V extends Shape, M>(m: TaskModule<V, M>): TaskModule<V, M> {
  return m;
}
