import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FleetInfo } from '../fleet/fleet.js';
import { assertOutputSchema } from './output-schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// The bundle users run, not the compiled files beside it: HOIST with node, BIN as package.json's bin.
export const HOIST = path.join(root, 'dist', 'hoist.cjs');
export const BIN = path.join(root, 'bin', 'hoist');
export const ROOT = root;

export interface HoistResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built hoist CLI the way a user does, with its own log directory. */
export function hoist(args: string[], env: Record<string, string> = {}): Promise<HoistResult> {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, { cwd: root, env: { ...process.env, CI: '1', NO_COLOR: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export async function hoistJson(args: string[], env: Record<string, string> = {}) {
  const r = await hoist([...args, '--json'], env);
  let report: JsonReport | undefined;
  try {
    report = JSON.parse(r.stdout) as JsonReport;
  } catch {
    throw new Error(`hoist ${args.join(' ')} gave no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  // Every --json output any test sees is held to the published schema.
  assertOutputSchema(report, `hoist ${args.join(' ')}`);
  return { ...r, report };
}

export interface JsonReport {
  schemaVersion: number;
  command: string;
  exitCode: number;
  error?: { kind: string; message: string };
  check?: boolean;
  aborted?: string;
  log?: string;
  hosts: {
    name: string;
    status: string;
    error?: string;
    reason?: string;
    notes?: string[];
    facts?: { clock?: { offsetMs: number; errorMs: number } };
    tasks: { title: string; task: string; status: string; changes: string[]; notes: string[]; error?: string }[];
  }[];
}

export const changedCount = (r: JsonReport) => r.hosts.reduce((n, h) => n + h.tasks.filter((t) => t.status === 'changed').length, 0);

const pexec = promisify(execFile);

/** Runs a command on a fleet host with OpenSSH and strict host-key checking: an observer independent of hoist. */
export async function onHost(fleet: FleetInfo, host: string, script: string): Promise<{ code: number; out: string }> {
  const h = fleet.hosts.find((x) => x.name === host)!;
  try {
    const r = await pexec(
      'ssh',
      [
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${fleet.knownHostsPath}`,
        '-i',
        fleet.identityPath,
        `root@${h.address}`,
        script,
      ],
      { maxBuffer: 64 << 20 },
    );
    return { code: 0, out: r.stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}
