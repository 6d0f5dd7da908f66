import { createTwoFilesPatch } from 'diff';
import { holdsPrivateKey, lineMasker } from '../../util/mask-lines.js';
import { quote } from '../../ssh/quote.js';
import { sha256 } from '../../util/hash.js';
import { addSecretsIn } from '../../util/redact.js';
import type { ProbeResult } from '../../facts/probe.js';
import { fileRead, type FileRead, type FileState } from '../../facts/reads.js';
import type { Action, PlanState, RunOptions } from '../types.js';
import { HostError } from '../../util/errors.js';

export interface DesiredFile {
  path: string;
  content: Buffer;
  mode: number;
  owner?: string;
  group?: string;
  /** Keep the replaced file as <path>.hoist-prev. */
  backup?: boolean;
  /** Holds credentials: never show its content in a diff. */
  secret?: boolean;
  validate?: (stagedPath: string) => string;
}

/**
 * A file's hash and ownership (and, for --diff, its content), read in the gathering round trip's batch.
 * A file that holds credentials (`secret`) is read as text even without --diff, never to be shown:
 * the credentials it holds now (a password about to change) become secrets before anything prints them.
 */
export function fileProbe(path: string, withContent: boolean, secret = false): FileRead {
  return fileRead(path, withContent ? 'bytes' : secret ? 'text' : 'none');
}

export function parseFileProbe(r: ProbeResult): FileState {
  if (r.file) {
    const c = r.file.content;
    if (c && !c.subarray(0, 8000).includes(0)) addSecretsIn(c.toString('utf8'));
    return r.file;
  }
  throw new HostError(`could not read the host's files: ${r.out.trim() || `exit ${r.code}`}`);
}

export const fmtMode = (m: number) => m.toString(8).padStart(4, '0');

/**
 * Compares a desired file with what the host has and returns the action that converges it,
 * or null when it already matches. Records the file's future hash in the plan state, where
 * service restarts read it.
 */
export function planFile(want: DesiredFile, have: FileState, state: PlanState, options: RunOptions): Action | null {
  const wantSha = sha256(want.content);
  state.files.set(want.path, wantSha);
  if (!want.secret) state.fileContents.set(want.path, want.content);
  else state.fileContents.delete(want.path);
  const owner = want.owner ?? 'root';
  const group = want.group ?? owner;
  const contentDiffers = !have.exists || have.sha256 !== wantSha;
  const metaDiffers = have.exists && (have.mode !== want.mode || have.owner !== owner || have.group !== group);
  if (!contentDiffers && !metaDiffers) return null;
  state.pending = true;
  if (contentDiffers) state.changedFiles.add(want.path);
  const what = !have.exists ? 'create' : contentDiffers ? 'update' : 'fix mode/owner of';
  const metaNote = metaDiffers
    ? ` (${have.mode !== want.mode ? `mode ${fmtMode(have.mode ?? 0)} → ${fmtMode(want.mode)}` : ''}${have.owner !== owner || have.group !== group ? ` owner ${have.owner}:${have.group} → ${owner}:${group}` : ''})`
    : '';
  return {
    kind: 'change',
    summary: `${what} ${want.path}${metaNote}`,
    diff: contentDiffers && options.diff ? fileDiff(want, have) : undefined,
    async run(conn, ctx) {
      if (contentDiffers) {
        await conn.upload(want.content, want.path, { mode: want.mode, owner, group, backup: want.backup ?? true, validate: want.validate });
        ctx.state.appliedFiles.set(want.path, have.exists);
        // The old file was a credential file (0600) or the new one is: its copy may hold a password.
        if (have.exists && (want.backup ?? true) && (want.secret || have.mode === 0o600)) ctx.state.secretBackups.add(want.path);
      } else {
        await conn.check(
          `chown ${quote(`${owner}:${group}`)} ${quote(want.path)} && chmod ${fmtMode(want.mode)} ${quote(want.path)}`,
          `set mode of ${want.path}`,
        );
      }
    },
  };
}

function fileDiff(want: DesiredFile, have: FileState): string {
  const isText = (b: Buffer) => !b.subarray(0, 8000).includes(0);
  const old = have.content ?? Buffer.alloc(0);
  if (!isText(want.content) || !isText(old)) return `Binary file ${want.path} differs\n`;
  let [before, after] = [old.toString('utf8'), want.content.toString('utf8')];
  if (want.secret) {
    if (holdsPrivateKey(before) || holdsPrivateKey(after)) return `--- ${want.path}\n(content not shown: a private key)\n`;
    // Credential values masked line by line, the old file's too (its password may no longer be a registered secret).
    const mask = lineMasker();
    [before, after] = [mask(before), mask(after)];
  }
  return createTwoFilesPatch(have.exists ? want.path : '/dev/null', want.path, before, after, '', '', { context: 3 });
}
