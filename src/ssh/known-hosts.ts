import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface KnownKey {
  type: string;
  blob: Buffer;
}

export type HostKeyVerdict =
  { status: 'match' } | { status: 'unknown' } | { status: 'revoked'; where: string } | { status: 'changed'; expected: KnownKey[]; where: string };

/** OpenSSH's default GlobalKnownHostsFile, read after the user's file. */
export const GLOBAL_KNOWN_HOSTS = '/etc/ssh/ssh_known_hosts';

interface Entry {
  /** The file and line, for messages. */
  file?: string;
  line: number;
  /** `@revoked`: this key is refused for the hosts the line names, whatever else says. */
  revoked?: boolean;
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
  /** Lines hoist read but does not act on (`@cert-authority`), named for the verbose output. */
  readonly notes: string[] = [];

  private constructor(
    readonly file: string,
    private readonly entries: Entry[],
  ) {}

  /**
   * The user's file (where accepted keys are recorded) and then the read-only global ones, as
   * OpenSSH reads UserKnownHostsFile and GlobalKnownHostsFile; a missing file is an empty one.
   */
  static async load(file: string, globals: string[] = []): Promise<KnownHosts> {
    const entries: Entry[] = [];
    const notes: string[] = [];
    for (const f of [file, ...globals]) {
      let text = '';
      try {
        text = await readFile(f, 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || (f !== file && code === 'EACCES')) continue;
        throw e;
      }
      entries.push(...parseKnownHosts(text, f, notes));
    }
    const kh = new KnownHosts(file, entries);
    kh.notes.push(...notes);
    return kh;
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
    return [
      ...new Set(
        this.entriesFor(host, port)
          .filter((e) => !e.revoked)
          .map((e) => e.key.type),
      ),
    ];
  }

  verify(host: string, port: number, blob: Buffer): HostKeyVerdict {
    const all = this.entriesFor(host, port);
    // A revoked key is refused even where another line lists it as the host's key, as OpenSSH does.
    const revoked = all.find((e) => e.revoked && e.key.blob.equals(blob));
    if (revoked) return { status: 'revoked', where: where(revoked) };
    const entries = all.filter((e) => !e.revoked);
    if (entries.length === 0) return { status: 'unknown' };
    if (entries.some((e) => e.key.blob.equals(blob))) return { status: 'match' };
    const type = keyTypeOf(blob);
    const sameType = entries.filter((e) => e.key.type === type);
    // A key of a type we have no record of is new, not changed; one that differs from a recorded key of its type is an alarm.
    if (sameType.length === 0) return { status: 'unknown' };
    return { status: 'changed', expected: sameType.map((e) => e.key), where: where(sameType[0]) };
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

const where = (e: Entry) => `${e.file ?? 'known_hosts'}:${e.line}`;

export function parseKnownHosts(text: string, file?: string, notes: string[] = []): Entry[] {
  const out: Entry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    let fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0].startsWith('@')) {
      const marker = fields[0];
      if (marker === '@revoked') {
        revoked = true;
        fields = fields.slice(1);
      } else {
        // Host certificates are not checked by hoist's SSH layer: such a line trusts nothing here.
        notes.push(
          `${file ?? 'known_hosts'}:${i + 1}: ${marker === '@cert-authority' ? '@cert-authority lines are not supported (host certificates are not checked); the line trusts no key' : `unknown marker ${marker}; the line is ignored`}`,
        );
        return;
      }
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
      out.push({
        file,
        line: i + 1,
        revoked,
        hosts: null,
        hashed: { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') },
        key: { type, blob },
      });
    } else {
      out.push({ file, line: i + 1, revoked, hosts: hostField.split(','), hashed: null, key: { type, blob } });
    }
  });
  return out;
}

/** OpenSSH host patterns know only `*` and `?`; brackets are literal (they wrap "[host]:port"). */
function sshPatternMatch(name: string, pattern: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}
