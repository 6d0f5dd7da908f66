/**
 * Upstream checksum files, in every shape the release assets hoist installs use:
 *  - containerd `<asset>.sha256sum` and CNI `<asset>.tgz.sha256`: `<hex>  <name>` (GNU coreutils)
 *  - runc `runc.sha256sum`: many `<hex>  <name>` lines inside an OpenPGP clear-signed message
 *  - cri-tools `<asset>.tar.gz.sha256`: only the hex, no name
 *  - `<hex> *<name>` (coreutils binary mode) and `SHA256 (<name>) = <hex>` (BSD / `--tag`)
 *
 * The clear-signature is stripped, not verified: hoist checks the payload hash over a TLS
 * download, and verifying would need the signer's keyring on the controller.
 */
import { hashFile, type HashAlgorithm } from './hash.js';
import { ControllerError } from './errors.js';

export type { HashAlgorithm } from './hash.js';

const HEX_LENGTH: Record<HashAlgorithm, number> = { sha256: 64, sha512: 128 };

export class ChecksumError extends ControllerError {
  constructor(message: string) {
    super(message);
    this.name = 'ChecksumError';
  }
}

export interface ChecksumEntry {
  /** Lower-case hex digest as written in the file (validated only on lookup). */
  hex: string;
  /** File name as listed, without binary-mode `*` marker; null for a bare-hash file. */
  name: string | null;
  /** 1-based line number within the signed body (or the file), for error messages. */
  line: number;
}

const PGP_SIGNED = '-----BEGIN PGP SIGNED MESSAGE-----';
const PGP_SIGNATURE = '-----BEGIN PGP SIGNATURE-----';

/**
 * Returns the signed text of an RFC 4880 §7 cleartext-signed message: armor headers
 * (`Hash: SHA256`) up to the first blank line are skipped, dash-escaped lines (`- `) are
 * unescaped, and everything from the signature block on is dropped. Unsigned text is
 * returned unchanged.
 */
export function stripClearSignature(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const start = lines.findIndex((l) => l.trimEnd() === PGP_SIGNED);
  if (start < 0) return lines.join('\n');
  let i = start + 1;
  while (i < lines.length && lines[i].trim() !== '') i++;
  if (i >= lines.length) throw new ChecksumError('clear-signed checksum file has no blank line after its armor headers');
  i++;
  const body: string[] = [];
  for (; i < lines.length; i++) {
    const l = lines[i];
    if (l.trimEnd() === PGP_SIGNATURE) {
      return body.join('\n');
    }
    body.push(l.startsWith('- ') ? l.slice(2) : l);
  }
  throw new ChecksumError('clear-signed checksum file has no signature block (truncated download?)');
}

const BSD_RE = /^(SHA256|SHA512|SHA2-256|SHA2-512)\s*\((.+)\)\s*=\s*(\S+)$/i;

/** Every entry in a checksum file; blank lines and `#` comments are skipped. */
export function parseChecksumEntries(text: string): ChecksumEntry[] {
  const body = stripClearSignature(text);
  const entries: ChecksumEntry[] = [];
  body.split('\n').forEach((rawLine, idx) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const bsd = BSD_RE.exec(line);
    if (bsd) {
      entries.push({ hex: bsd[3].toLowerCase(), name: bsd[2], line: idx + 1 });
      return;
    }
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) return;
    let name: string | null = m[2] === undefined ? null : m[2].trim();
    // coreutils marks binary mode with `*` and text mode with a second space.
    if (name !== null && name.startsWith('*')) name = name.slice(1);
    entries.push({ hex: m[1].toLowerCase(), name: name === '' ? null : name, line: idx + 1 });
  });
  return entries;
}

function baseName(p: string): string {
  const parts = p.split('/');
  return parts[parts.length - 1];
}

function validHex(hex: string, algorithm: HashAlgorithm): boolean {
  return hex.length === HEX_LENGTH[algorithm] && /^[0-9a-f]+$/.test(hex);
}

export interface FindChecksumOptions {
  /** Expected digest; decides the hex length. Default sha256. */
  algorithm?: HashAlgorithm;
  /** Name of the checksum file, used in error messages only. */
  source?: string;
}

/**
 * The digest of `assetName` from a checksum file's text. A file that holds a single bare
 * hash (cri-tools) is taken to describe the asset it was published next to.
 */
export function findChecksum(text: string, assetName: string, opts: FindChecksumOptions = {}): string {
  const algorithm = opts.algorithm ?? 'sha256';
  const where = opts.source ? ` in ${opts.source}` : '';
  const entries = parseChecksumEntries(text);
  if (entries.length === 0) throw new ChecksumError(`checksum file${where} is empty`);

  const named = entries.filter((e) => e.name !== null);
  let entry: ChecksumEntry | undefined;
  if (named.length === 0) {
    if (entries.length > 1) {
      throw new ChecksumError(`checksum file${where} lists ${entries.length} bare hashes without file names; cannot tell which is ${assetName}`);
    }
    entry = entries[0];
  } else {
    const target = baseName(assetName);
    const matches = named.filter((e) => e.name === assetName || baseName(e.name as string) === target);
    if (matches.length === 0) {
      // An HTML error page or similar saved in place of the checksum file.
      if (!entries.some((e) => /^[0-9a-f]{64}([0-9a-f]{64})?$/.test(e.hex))) {
        throw new ChecksumError(`checksum file${where} holds no checksum lines (starts ${JSON.stringify(text.trim().slice(0, 60))})`);
      }
      const listed = named.map((e) => e.name).join(', ');
      throw new ChecksumError(`${assetName} is not listed${where} (lists: ${listed})`);
    }
    const distinct = new Set(matches.map((e) => e.hex));
    if (distinct.size > 1) throw new ChecksumError(`${assetName} is listed${where} with ${distinct.size} different hashes`);
    entry = matches[0];
  }
  if (!validHex(entry.hex, algorithm)) {
    throw new ChecksumError(
      `malformed ${algorithm} for ${assetName}${where} (line ${entry.line}): expected ${HEX_LENGTH[algorithm]} hex digits, got ${JSON.stringify(entry.hex.slice(0, 140))}`,
    );
  }
  return entry.hex;
}

/** Throws a ChecksumError unless the file at `path` has the expected digest. */
export async function verifyFile(path: string, expectedHex: string, algorithm: HashAlgorithm = 'sha256'): Promise<void> {
  const want = expectedHex.trim().toLowerCase();
  if (!validHex(want, algorithm)) throw new ChecksumError(`malformed expected ${algorithm}: ${JSON.stringify(expectedHex)}`);
  const got = await hashFile(path, algorithm);
  if (got !== want) throw new ChecksumError(`${algorithm} mismatch for ${path}: expected ${want}, got ${got}`);
}
