import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface KnownKey {
  type: string;
  blob: Buffer;
}

export type HostKeyVerdict =
  | { status: 'match' }
  | { status: 'unknown' }
  | { status: 'changed'; expected: KnownKey[]; line: number };

interface Entry {
  line: number;
  hosts: string[] | null;
  hashed: { salt: Buffer; hash: Buffer } | null;
  key: KnownKey;
}

/** The name OpenSSH stores for a host: bare on port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function keyTypeOf(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('ascii');
}

export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export class KnownHosts {
  private constructor(readonly file: string, private readonly entries: Entry[]) {}

  static async load(file: string): Promise<KnownHosts> {
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return new KnownHosts(file, parseKnownHosts(text));
  }

  private entriesFor(host: string, port: number): Entry[] {
    const name = knownHostsName(host, port);
    return this.entries.filter((e) => {
      if (e.hashed) return createHmac('sha1', e.hashed.salt).update(name).digest().equals(e.hashed.hash);
      let hit = false;
      for (const pat of e.hosts!) {
        const negated = pat.startsWith('!');
        const p = negated ? pat.slice(1) : pat;
        if (sshPatternMatch(name, p)) {
          if (negated) return false;
          hit = true;
        }
      }
      return hit;
    });
  }

  /** Key types known for the host, so the handshake asks for one of those, as OpenSSH does. */
  typesFor(host: string, port: number): string[] {
    return [...new Set(this.entriesFor(host, port).map((e) => e.key.type))];
  }

  verify(host: string, port: number, blob: Buffer): HostKeyVerdict {
    const entries = this.entriesFor(host, port);
    if (entries.length === 0) return { status: 'unknown' };
    if (entries.some((e) => e.key.blob.equals(blob))) return { status: 'match' };
    const type = keyTypeOf(blob);
    const sameType = entries.filter((e) => e.key.type === type);
    // A key of a type we have no record of is new, not changed; one that differs from a recorded key of its type is an alarm.
    if (sameType.length === 0) return { status: 'unknown' };
    return { status: 'changed', expected: sameType.map((e) => e.key), line: sameType[0].line };
  }

  /** Records a key the user accepted, hashed like `ssh-keygen -H` so the file doesn't list the fleet. */
  async add(host: string, port: number, blob: Buffer): Promise<void> {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(knownHostsName(host, port)).digest();
    const line = `|1|${salt.toString('base64')}|${hash.toString('base64')} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`;
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await appendFile(this.file, line, { mode: 0o600 });
    this.entries.push({ line: -1, hosts: null, hashed: { salt, hash }, key: { type: keyTypeOf(blob), blob } });
  }
}

export function parseKnownHosts(text: string): Entry[] {
  const out: Entry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    let fields = line.split(/\s+/);
    if (fields[0].startsWith('@')) {
      // @revoked and @cert-authority lines are not plain host keys; hoist checks plain keys only.
      return;
    }
    if (fields.length < 3) return;
    const [hostField, type, b64] = fields;
    fields = [];
    let blob: Buffer;
    try {
      blob = Buffer.from(b64, 'base64');
      if (keyTypeOf(blob) !== type) return;
    } catch {
      return;
    }
    if (hostField.startsWith('|1|')) {
      const [, , salt, hash] = hostField.split('|');
      out.push({ line: i + 1, hosts: null, hashed: { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') }, key: { type, blob } });
    } else {
      out.push({ line: i + 1, hosts: hostField.split(','), hashed: null, key: { type, blob } });
    }
  });
  return out;
}

/** OpenSSH host patterns know only `*` and `?`; brackets are literal (they wrap "[host]:port"). */
function sshPatternMatch(name: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}
