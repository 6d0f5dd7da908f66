/**
 * Two round trips fewer per login with a key file. ssh2, like OpenSSH, asks the server whether it
 * would take a key (a publickey query) before it signs, and waits for SERVICE_ACCEPT before its first
 * USERAUTH_REQUEST. With the private key in memory, hoist signs at once (RFC 4252 §7 allows a signed
 * request without a query) and sends the first one right behind the SERVICE_REQUEST: the server reads
 * them in order, so the answer to the login comes back with the service's acceptance.
 *
 * Agent keys keep the query: an agent may ask its user to confirm each signature, or a hardware key
 * for a touch, and a key the server would refuse must not cost either. RSA keys are not sent ahead:
 * the signature algorithm depends on the server's EXT_INFO, which ssh2 reads after the service request.
 *
 * This reaches into ssh2's Protocol object (`_protocol`, its `authPK` and `service`); if a new ssh2
 * lacks them, logins take the round trips they took before (test/unit/quick-auth.test.ts fails then).
 */
import type { AnyAuthMethod, Client, ParsedKey } from 'ssh2';

type SignCallback = (data: Buffer, done: (signature: Buffer) => void) => void;

interface ProtocolInternals {
  authPK(username: string, key: ParsedKey, keyAlgo?: string | SignCallback, sign?: SignCallback): void;
  service(name: string): void;
}

/** The hash a key algorithm signs with (ssh2's getKeyAlgos): RSA's SHA-2 names, else the key's own. */
function hashFor(keyAlgo: string | undefined): string | undefined {
  if (keyAlgo === 'rsa-sha2-256') return 'sha256';
  if (keyAlgo === 'rsa-sha2-512') return 'sha512';
  if (keyAlgo === 'ssh-rsa') return 'sha1';
  return undefined;
}

function isPrivateKey(k: unknown): k is ParsedKey {
  return (
    typeof k === 'object' &&
    k !== null &&
    typeof (k as ParsedKey).isPrivateKey === 'function' &&
    (k as ParsedKey).isPrivateKey() &&
    typeof (k as ParsedKey).sign === 'function'
  );
}

/** Whether ssh2's internals are where quickAuth expects them, on a client after connect(). */
export function protocolOf(client: Client): ProtocolInternals | undefined {
  const proto = (client as unknown as { _protocol?: Partial<ProtocolInternals> })._protocol;
  return proto && typeof proto.authPK === 'function' && typeof proto.service === 'function' ? (proto as ProtocolInternals) : undefined;
}

/**
 * Call right after `client.connect()` (which creates the protocol object) with the same methods as
 * its authHandler. Returns whether the login was sped up.
 */
export function quickAuth(client: Client, methods: AnyAuthMethod[]): boolean {
  const proto = protocolOf(client);
  if (!proto) return false;
  const authPK = proto.authPK.bind(proto);
  const service = proto.service.bind(proto);
  const signer =
    (key: ParsedKey, keyAlgo: string | undefined): SignCallback =>
    (data, done) => {
      const sig = key.sign(data, hashFor(keyAlgo));
      // ssh2 reports a key that cannot sign when it signs itself; here the request just goes unsigned.
      if (sig instanceof Error) throw sig;
      done(sig);
    };
  // The first method's request, already on the wire when ssh2 gets to sending it itself.
  let ahead: ParsedKey | undefined;
  proto.authPK = (username, key, keyAlgo, sign) => {
    if (typeof keyAlgo === 'function') [sign, keyAlgo] = [keyAlgo, undefined];
    if (sign || !isPrivateKey(key)) return authPK(username, key, keyAlgo, sign);
    if (ahead && ahead === key && keyAlgo === undefined) {
      ahead = undefined;
      return;
    }
    ahead = undefined;
    try {
      return authPK(username, key, keyAlgo, signer(key, keyAlgo));
    } catch {
      return authPK(username, key, keyAlgo);
    }
  };
  const first = methods[0];
  proto.service = (name) => {
    service(name);
    if (name !== 'ssh-userauth' || first?.type !== 'publickey') return;
    const key = first.key as unknown;
    if (!isPrivateKey(key) || key.type === 'ssh-rsa') return;
    try {
      authPK(first.username, key, undefined, signer(key, undefined));
      ahead = key;
    } catch {
      // Not sent: ssh2 sends its own request after SERVICE_ACCEPT.
    }
  };
  return true;
}
