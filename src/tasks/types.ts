import type { Facts } from '../facts/facts.js';
import type { ProbeResult } from '../facts/probe.js';
import type { InventoryHost, Vars } from '../inventory/inventory.js';
import type { HostConnection } from '../ssh/connection.js';
import type { ObjectSchema, InferShape, Shape } from '../util/schema.js';
import type { Logger } from '../runner/log.js';

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
}

/**
 * What the plan of one host predicts, shared by the tasks of that host in order: a later task
 * (a service restart, say) decides from what earlier tasks will change, before anything runs.
 */
export class PlanState {
  /** Path → sha256 the file will have once the plan is applied. */
  readonly files = new Map<string, string>();
  /** Paths whose content the plan changes (a unit file among them means a daemon-reload). */
  readonly changedFiles = new Set<string>();
  readonly data = new Map<string, unknown>();
  /** Whether any earlier task of this host has a change pending. */
  pending = false;
  /** Files actually replaced during apply, with whether they existed before: what a rollback restores. */
  readonly appliedFiles = new Map<string, boolean>();
  /**
   * Set by tasks whose changes can be undone as a whole (containerd: binaries, config, unit):
   * run when the host fails after changes were applied, so a host is never left half-done.
   * Returns a sentence for the recap.
   */
  rollback?: (conn: HostConnection, log: Logger) => Promise<string>;
}

export interface PrepareContext {
  host: InventoryHost;
  vars: Vars;
  options: RunOptions;
  controller: Controller;
}

export interface PlanContext<R> extends PrepareContext {
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
  /** 'change' alters the host; 'check' only reads it (verification) and never counts as changed. */
  kind: 'change' | 'check';
  summary: string;
  /** Unified diff shown by --diff; absent for binaries and for files holding secrets. */
  diff?: string;
  run(conn: HostConnection, ctx: ApplyContext): Promise<void>;
}

export interface TaskPlan {
  actions: Action[];
  /** Set when the task has nothing to do on this host by design (e.g. crictl not installed). */
  skipped?: string;
}

export interface TaskDefinition<S extends ObjectSchema<Shape>, R = undefined> {
  name: string;
  summary: string;
  params: S;
  /** Variables the task reads directly (beyond its parameters), so -e can tell a typo from a setting. */
  reads?: readonly string[];
  /** Controller-side preparation (downloads, local files, rendering) done before any host is touched. */
  prepare?(params: InferShape<S['shape']>, ctx: PrepareContext): Promise<R>;
  /**
   * Read-only work over the connection that isn't a shell snippet (a gRPC call through a
   * forwarded socket), started as soon as the host is connected, alongside the gathering round trip.
   */
  live?(params: InferShape<S['shape']>, ctx: PrepareContext & { prepared: R; conn: HostConnection }): Promise<unknown>;
  /** Read-only shell snippets, keyed by id, run in the host's single gathering round trip. */
  probes?(params: InferShape<S['shape']>, ctx: PrepareContext & { prepared: R }): Record<string, string>;
  plan(params: InferShape<S['shape']>, ctx: PlanContext<R>): TaskPlan | Promise<TaskPlan>;
}

/** The registry stores tasks of every parameter shape side by side. */
export type AnyTask = TaskDefinition<ObjectSchema<Shape>, unknown>;

export function defineTask<S extends ObjectSchema<Shape>, R = undefined>(def: TaskDefinition<S, R>): TaskDefinition<S, R> {
  return def;
}
