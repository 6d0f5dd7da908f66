const MAGIC = 'openssh-key-v1\0';

/**
 * The public half of an OpenSSH-format private key, which the format keeps unencrypted in its header:
 * enough to match an encrypted key with an agent key without asking for its passphrase.
 */
export function openSshPublicBlob(raw: Buffer): Buffer | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(raw.toString('latin1'));
  if (!m) return undefined;
  const buf = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  if (buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) return undefined;
  let off = MAGIC.length;
  const str = (): Buffer | undefined => {
    if (off + 4 > buf.length) return undefined;
    const len = buf.readUInt32BE(off);
    if (off + 4 + len > buf.length) return undefined;
    const s = buf.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    return s;
  };
  // cipher name, kdf name, kdf options, then the key count and the first public key.
  if (!str() || !str() || !str() || off + 4 > buf.length) return undefined;
  const count = buf.readUInt32BE(off);
  off += 4;
  return count >= 1 ? str() : undefined;
}
