import path from 'node:path';
import { SWEEP_TEMPS, TEMP_JOURNAL, TEMP_MARK } from '../host-paths.js';
import { quote } from './quote.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { ClientChannel } from 'ssh2';
import { HostError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import type { HostSession } from './session.js';

export interface UploadOptions {
  mode: number;
  owner?: string;
  group?: string;
  /** Keep the file being replaced as <path>.hoist-prev (a hard link: the old bytes, at no copy cost). */
  backup?: boolean;
  /** The sha256 the bytes must have on arrival (a release file): checked on the host before anything else. */
  sha256?: string;
  /** A bash command that checks the staged file before it replaces the live one; it gets a shell word (already quoted) expanding to the file's path. */
  validate?: (stagedPath: string) => string;
  /** Bash lines run before anything is written (hoist's path pins): a non-zero exit refuses the upload. */
  precheck?: string;
}

/** The temporary name of an upload to `remotePath`: beside it (same filesystem, so the rename is atomic). */
export function stagedName(remotePath: string, nonce: string): string {
  return `${path.posix.dirname(remotePath)}/${TEMP_MARK}${nonce}.${path.posix.basename(remotePath)}`;
}

/**
 * Receives `size` bytes on stdin into a temporary file and moves it into place. The size check matters:
 * when hoist dies mid-upload, sshd closes stdin and `cat` ends as if the file were complete. The
 * temporary file is journalled first, so a kill at any point leaves nothing the next upload (or a
 * reset) doesn't remove.
 */
export function uploadScript(remotePath: string, size: number, opts: UploadOptions, ctx: { privileged: boolean }): string {
  const owner = opts.owner ?? 'root';
  const group = opts.group ?? owner;
  const mode = opts.mode.toString(8).padStart(4, '0');
  const shown = quote(remotePath);
  return [
    opts.precheck ?? '',
    'set -e',
    ...tempBesideTarget(remotePath, ctx),
    'cat > "$tmp"',
    `got=$(stat -c %s "$tmp"); if [ "$got" != ${size} ]; then echo "the upload of "${shown}" arrived incomplete ($got of ${size} bytes)" >&2; exit 1; fi`,
    opts.sha256
      ? `sum=$(sha256sum < "$tmp"); sum=\${sum%% *}; if [ "$sum" != ${quote(opts.sha256)} ]; then echo "the upload of "${shown}" arrived with sha256 $sum, not "${quote(opts.sha256)} >&2; exit 1; fi`
      : '',
    ctx.privileged ? `chown ${quote(`${owner}:${group}`)} "$tmp"` : '',
    `chmod ${mode} "$tmp"`,
    opts.validate
      ? `if ! out=$( { ${opts.validate('"$tmp"')} ; } 2>&1 ); then printf '%s\\n' "$out" | tail -5 >&2; echo "the new "${shown}" was refused; the old one is still in place" >&2; exit 3; fi`
      : '',
    opts.backup ? `if [ -f ${shown} ]; then ln -f ${shown} ${quote(`${remotePath}.hoist-prev`)}; fi` : '',
    `mv -f "$tmp" ${shown}`,
    'trap - EXIT',
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * Script lines that leave `$tmp` naming a new, empty temporary file beside `remotePath` (same
 * filesystem, so the final rename is atomic), marked and, when privileged, journalled before it
 * exists; the leftovers of a killed run are swept first, and `$tmp` is removed on any exit until
 * the caller clears the trap.
 */
export function tempBesideTarget(remotePath: string, ctx: { privileged: boolean }): string[] {
  const dir = path.posix.dirname(remotePath);
  const base = path.posix.basename(remotePath);
  return [
    `mkdir -p ${quote(dir)}`,
    ctx.privileged ? SWEEP_TEMPS : '',
    `tmp=$(mktemp ${quote(`${dir}/${TEMP_MARK}XXXXXXXX.${base}`)})`,
    ctx.privileged ? `printf '%s\\n' "$tmp" >> ${TEMP_JOURNAL}` : '',
    `trap 'rm -f "$tmp"' EXIT`,
  ];
}

/**
 * SFTP-free atomic write: the bytes stream into a temporary file beside the target (through sudo
 * under become, so nothing passes through the login user's home), which is checked for size, given
 * owner and mode, optionally validated, and renamed into place. A reader or a killed run never sees
 * half a file; a killed upload leaves a `.hoist-tmp-` file that the next upload of it removes.
 */
export async function uploadFile(s: HostSession, data: Buffer | { localPath: string }, remotePath: string, opts: UploadOptions): Promise<void> {
  const size = Buffer.isBuffer(data) ? data.length : (await stat(data.localPath)).size;
  const elevate = s.becomes;
  const privileged = s.runsAsRoot(elevate);
  const script = uploadScript(remotePath, size, opts, { privileged });
  const feed = async (ch: ClientChannel) => {
    if (Buffer.isBuffer(data)) ch.end(data);
    else await pipeline(createReadStream(data.localPath, { highWaterMark: 256 * 1024 }), ch);
  };
  const t0 = Date.now();
  const r = await s.runChannel(`bash -c ${quote(s.serialized(script, privileged))}`, feed, elevate, Math.max(s.endpoint.commandTimeoutMs, 600_000));
  s.trace(1, `upload ${remotePath} (${size} bytes, mode ${opts.mode.toString(8)}): exit ${r.code} in ${Date.now() - t0} ms`);
  s.bytesPushed += size;
  if (r.code !== 0)
    throw new HostError(`installing ${remotePath} failed: ${printable(r.stderr.trim().split('\n').slice(-5).join('\n')).replace(/\\n/g, '\n')}`);
}
