import type { RunReport } from '../runner/report.js';
import { redactDeep } from '../util/redact.js';
import type { ErrorKind } from '../util/errors.js';

/**
 * The one shape every `--json` output has, described by docs/hoist-output.schema.json. Bump the
 * version when a field changes meaning or goes away; adding a field keeps it.
 */
export const JSON_SCHEMA_VERSION = 1;

export type { ErrorKind };

export interface JsonEnvelope {
  schemaVersion: typeof JSON_SCHEMA_VERSION;
  command: string;
  exitCode: number;
  /** Set when the command stopped before hosts could report: bad input, or the controller failing. */
  error?: { kind: ErrorKind; message: string };
  /** Runs (apply, check, verify, ping, facts): the playbook and the host reports. */
  playbook?: string;
  check?: boolean;
  durationMs?: number;
  aborted?: string;
  /** The run's log file (absent with HOIST_LOG=off). */
  log?: string;
  /** Runs of a playbook with hooks: each hook with the file and line it comes from. */
  hooks?: unknown[];
  /** Runs: one report per host; `inventory`: the hosts selected, or the one asked for with its variables. */
  hosts: unknown[];
  /** `tasks`: the task reference. */
  tasks?: unknown[];
}

export function runEnvelope(command: string, report: RunReport, checkRequested: boolean, log?: string): JsonEnvelope {
  return redactDeep({
    schemaVersion: JSON_SCHEMA_VERSION,
    command,
    exitCode: report.exitCode,
    playbook: report.playbook,
    // ping, facts and verify plan like --check internally; only an explicit --check is reported as one.
    check: checkRequested,
    durationMs: report.durationMs,
    ...(report.aborted ? { aborted: report.aborted } : {}),
    ...(log ? { log } : {}),
    ...(report.hooks ? { hooks: report.hooks } : {}),
    hosts: report.hosts,
  });
}

export function errorEnvelope(command: string, exitCode: number, kind: ErrorKind, message: string, log?: string): JsonEnvelope {
  return redactDeep({ schemaVersion: JSON_SCHEMA_VERSION, command, exitCode, error: { kind, message }, ...(log ? { log } : {}), hosts: [] });
}

export function dataEnvelope(command: string, data: { hosts?: unknown[]; tasks?: unknown[] }): JsonEnvelope {
  return redactDeep({ schemaVersion: JSON_SCHEMA_VERSION, command, exitCode: 0, hosts: data.hosts ?? [], ...(data.tasks ? { tasks: data.tasks } : {}) });
}

export function writeJson(env: JsonEnvelope): void {
  process.stdout.write(`${JSON.stringify(env, null, 2)}\n`);
}
