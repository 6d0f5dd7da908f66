import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { HostError, EXIT } from '../util/errors.js';
import { printable } from '../util/printable.js';
import type { Credentials } from './credentials.js';
import type { Endpoint } from './endpoint.js';
import { KnownHosts, fingerprint, keyTypeOf } from './known-hosts.js';
import { expandProxyCommand, startProxyCommand, type ProxyStream } from './proxy-command.js';
import { onTick } from './controller-clock.js';
import { HandshakePacer } from './handshake-pacer.js';
import { SilenceCounter, WorkingDeadline } from './liveness.js';
import { quickAuth } from './quick-auth.js';

export interface TransportOptions {
  knownHosts: KnownHosts;
  acceptNewHostKeys: boolean;
  credentials: Credentials;
}

/** The host key was unknown or changed: a person must look (exit 6). */
export class HostKeyError extends HostError {
  override readonly exitCode: number = EXIT.hostKey;
}

/** An authenticated SSH session to a host, with whatever hops it runs through. */
export interface Link {
  client: Client;
  /** Ends the session and every hop and ProxyCommand under it. */
  close(): void;
  /**
   * Called once when the session is gone for any reason: the client closed, keepalives went
   * unanswered, the channel through the jump host or the ProxyCommand ended, or the jump host's own
   * session died. ssh2 alone misses some of these (its keepalive stops quietly once the socket under it
   * is not writable), and a run would then wait on the host forever.
   */
  onLost(fn: (why: string) => void): void;
}

/**
 * ssh2 sends a keepalive every KEEPALIVE_MS once nothing else came back; whether the host is gone is
 * decided here (SilenceCounter, liveness.ts), by silence in the controller's working time, so ssh2's
 * own count, which knows nothing of a controller that was late to read the replies, never fires.
 */
const KEEPALIVE_MS = 1_000;
const KEEPALIVE_COUNT = Number.MAX_SAFE_INTEGER;

/** Handshakes are paced per run (see handshake-pacer.ts). */
const pacers = new WeakMap<TransportOptions, HandshakePacer>();

function pacerFor(opts: TransportOptions): HandshakePacer {
  let p = pacers.get(opts);
  if (!p) pacers.set(opts, (p = new HandshakePacer()));
  return p;
}

/**
 * Opens a session to `ep`, dialling through its jump hosts or its ProxyCommand first. Everything has a
 * deadline, and whatever was opened on the way is closed again when a later step fails: a failed host
 * leaves no session to a bastion (nor a ProxyCommand) behind to keep the process alive.
 */
export async function openLink(ep: Endpoint, opts: TransportOptions): Promise<Link> {
  let hop: Link | undefined;
  let proxy: ProxyStream | undefined;
  let sock: Duplex | undefined;
  try {
    if (ep.jump) {
      hop = await acquireHop(ep.jump, opts);
      sock = await forwardThrough(hop, ep);
    } else if (ep.proxyCommand) {
      proxy = startProxyCommand(expandProxyCommand(ep.proxyCommand, { host: ep.host, port: ep.port, user: ep.user, name: ep.name }), ep.name);
      sock = proxy.sock;
    }
    const client = await pacerFor(opts).run(() => handshake(ep, opts, sock, proxy));
    const via = hop;
    let closed = false;
    const closeAll = () => {
      if (closed) return;
      closed = true;
      stopWatching();
      wire?.removeListener('data', heard);
      client.end();
      proxy?.close();
      via?.close();
    };
    const listeners: ((why: string) => void)[] = [];
    let lostWhy: string | undefined;
    // Any byte from the host is life; silence counts only in time the controller could have read it.
    const wire = sock ?? socketOf(client);
    if (!wire) {
      // Without it every quiet host would look dead after 4 s: fail loudly instead (an ssh2 upgrade).
      client.end();
      throw new HostError(`${ep.name}: cannot watch the connection: ssh2 no longer exposes its socket`);
    }
    const silence = new SilenceCounter();
    const heard = () => silence.heard();
    wire.on('data', heard);
    const stopWatching = onTick((elapsed, lag) => {
      if (silence.tick(elapsed, lag)) lost(`no answer to keepalives for ${(silence.silent / 1000).toFixed(1)} s`);
    });
    const lost = (why: string) => {
      if (lostWhy !== undefined) return;
      lostWhy = why;
      stopWatching();
      wire.removeListener('data', heard);
      // Nothing more can come over it: free the socket now rather than wait for a goodbye.
      client.destroy();
      for (const fn of listeners.splice(0)) fn(why);
    };
    client.on('close', () => lost('the connection closed'));
    client.on('error', (e: Error & { level?: string }) => lost(e.level === 'client-timeout' ? 'no answer to keepalives' : e.message));
    if (sock) {
      sock.once('close', () => lost(via ? 'the channel through the jump host closed' : 'the ProxyCommand ended'));
      sock.once('end', () => lost(via ? 'the channel through the jump host ended' : 'the ProxyCommand ended'));
      sock.once('error', (e: Error) => lost(e.message));
    }
    // When a hop dies, the session riding on it is gone too.
    via?.onLost((why) => lost(`the jump host connection is gone (${why})`));
    return {
      client,
      close: closeAll,
      onLost: (fn) => (lostWhy !== undefined ? fn(lostWhy) : void listeners.push(fn)),
    };
  } catch (e) {
    proxy?.close();
    hop?.close();
    throw e;
  }
}

/**
 * Hosts behind the same bastion share one session to it, each with its own forwarded channel, as
 * OpenSSH's ControlMaster would: a bastion's sshd drops unauthenticated connections beyond MaxStartups
 * (10 by default), so a connection per host fails from the eleventh host on, and every handshake
 * costs the bastion CPU. The shared session ends when the last host using it is done.
 */
const hopPools = new WeakMap<TransportOptions, Map<string, { link: Promise<Link>; users: number }>>();

function hopKey(ep: Endpoint): string {
  return `${ep.user}@${ep.host}:${ep.port}${ep.jump ? `<${hopKey(ep.jump)}` : ep.proxyCommand ? `<${ep.proxyCommand}` : ''}`;
}

async function acquireHop(ep: Endpoint, opts: TransportOptions): Promise<Link> {
  let pool = hopPools.get(opts);
  if (!pool) hopPools.set(opts, (pool = new Map()));
  const key = hopKey(ep);
  let entry = pool.get(key);
  if (!entry) {
    const link = openLink(ep, opts);
    const made = { link, users: 0 };
    entry = made;
    pool.set(key, made);
    link.then(
      (l) => l.onLost(() => pool.get(key) === made && pool.delete(key)),
      () => undefined,
    );
  }
  entry.users++;
  const shared = entry;
  let link: Link;
  try {
    link = await shared.link;
  } catch (e) {
    shared.users--;
    throw e;
  }
  let released = false;
  return {
    client: link.client,
    close: () => {
      if (released) return;
      released = true;
      if (--shared.users === 0) {
        if (pool.get(key) === shared) pool.delete(key);
        link.close();
      }
    },
    onLost: (fn) => link.onLost(fn),
  };
}

function forwardThrough(hop: Link, ep: Endpoint): Promise<Duplex> {
  return withDeadline(
    new Promise<Duplex>((resolve, reject) =>
      hop.client.forwardOut('127.0.0.1', 0, ep.host, ep.port, (err, ch) =>
        err ? reject(new HostError(`${ep.name}: the jump host cannot reach ${ep.host}:${ep.port}: ${err.message}`)) : resolve(ch),
      ),
    ),
    ep.connectTimeoutMs,
    () => new HostError(`${ep.name}: the jump host did not open a channel to ${ep.host}:${ep.port} within ${ep.connectTimeoutMs / 1000} s`),
  );
}

function handshake(ep: Endpoint, opts: TransportOptions, sock: Duplex | undefined, proxy: ProxyStream | undefined): Promise<Client> {
  const client = new Client();
  const types = opts.knownHosts.typesFor(ep.host, ep.port);
  let keyProblem: HostKeyError | undefined;
  let newKey: Buffer | undefined;
  const auth = opts.credentials.authFor(ep);
  if (auth.methods.length === 0) {
    return Promise.reject(new HostError(`${ep.name}: nothing to log in with (no ssh-agent key and no readable identity file)`));
  }
  const cfg: ConnectConfig = {
    host: ep.host,
    port: ep.port,
    username: ep.user,
    sock,
    // The deadline is kept below, in working time: ssh2's would count the seconds a loaded controller stood still.
    readyTimeout: 0,
    keepaliveInterval: KEEPALIVE_MS,
    keepaliveCountMax: KEEPALIVE_COUNT,
    algorithms: types.length ? { serverHostKey: preferTypes(types) as ServerHostKeyAlgorithm[] } : undefined,
    hostVerifier: (key: Buffer) => {
      const verdict = opts.knownHosts.verify(ep.host, ep.port, key);
      if (verdict.status === 'match') return true;
      if (verdict.status === 'revoked') {
        // Refused whatever --accept-new-host-keys says: OpenSSH's "REVOKED HOST KEY DETECTED".
        keyProblem = new HostKeyError(
          `REVOKED HOST KEY for ${ep.name} (${ep.host}:${ep.port}): it offers ${keyTypeOf(key)} ${fingerprint(key)}, ` +
            `which ${verdict.where} marks @revoked. The key may have been stolen; nothing was run on the host. ` +
            `Give the host a new key and record it.`,
        );
        return false;
      }
      if (verdict.status === 'changed') {
        keyProblem = new HostKeyError(
          `HOST KEY CHANGED for ${ep.name} (${ep.host}:${ep.port}): it now offers ${keyTypeOf(key)} ${fingerprint(key)}, ` +
            `but ${verdict.where} records ${fingerprint(verdict.expected[0].blob)}. ` +
            `Someone may be intercepting the connection, or the host was rebuilt; nothing was run on it. ` +
            `If the change is expected, remove the old entry (ssh-keygen -R) and run again.`,
        );
        return false;
      }
      if (!opts.acceptNewHostKeys) {
        keyProblem = new HostKeyError(
          `unknown host key for ${ep.name} (${ep.host}:${ep.port}): ${keyTypeOf(key)} ${fingerprint(key)} is not in ${opts.knownHosts.file}. ` +
            `Check the fingerprint and run with --accept-new-host-keys to record it.`,
        );
        return false;
      }
      newKey = key;
      return true;
    },
    authHandler: auth.methods,
  };
  return new Promise<Client>((resolve, reject) => {
    let stage: 'tcp' | 'ssh' = sock ? 'ssh' : 'tcp';
    let settled = false;
    const onError = (err: Error & { level?: string; code?: string }) => {
      // ssh2 may report one failure twice (the socket, then the protocol): the first one is the story.
      if (settled) return;
      settled = true;
      stopDeadline();
      client.removeListener('ready', onReady);
      client.end();
      if (keyProblem) return reject(keyProblem);
      if (proxy) {
        // The broken pipe usually arrives before the command's exit status, which is the real story.
        void proxy.settled(1000).then(() => {
          const proxied = proxy.failure();
          reject(new HostError(proxied ?? `${ep.name}: SSH through its ProxyCommand failed: ${printable(err.message)}`));
        });
        return;
      }
      reject(new HostError(`${ep.name}: ${describeConnectError(err, ep, stage, auth.described)}`));
    };
    const onReady = () => {
      if (settled) return;
      settled = true;
      stopDeadline();
      // Later errors surface through the channel in use; onError, now inert, keeps them from crashing the process.
      if (newKey) {
        opts.knownHosts.add(ep.host, ep.port, newKey).then(
          () => resolve(client),
          (e: Error) => {
            client.end();
            reject(new HostError(`${ep.name}: cannot record its host key in ${opts.knownHosts.file}: ${e.message}`));
          },
        );
      } else resolve(client);
    };
    client.on('error', onError);
    const stopDeadline = afterWorking(ep.connectTimeoutMs, () => {
      onError(Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' }));
      client.destroy();
    });
    // A server that closes without an error (a banner, then nothing: an sshd out of file descriptors)
    // would otherwise leave this promise pending with nothing keeping the process alive.
    client.once('close', () =>
      onError(
        Object.assign(new Error(stage === 'tcp' ? 'the connection closed' : 'the server closed the connection during the SSH handshake'), {
          level: stage === 'tcp' ? 'client-socket' : 'protocol',
        }),
      ),
    );
    client.once('ready', onReady);
    client.once('handshake', () => (stage = 'ssh'));
    client.on('banner', () => undefined);
    // Connected at the TCP level: what fails from here is SSH's part.
    client.once('connect', () => (stage = 'ssh'));
    client.connect(cfg);
    quickAuth(client, auth.methods);
  });
}

/** Calls `fn` once `ms` of the controller's working time have passed; returns a cancel. */
function afterWorking(ms: number, fn: () => void): () => void {
  const deadline = new WorkingDeadline(ms);
  const stop = onTick((elapsed) => {
    if (!deadline.tick(elapsed)) return;
    stop();
    fn();
  });
  return stop;
}

function withDeadline<T>(p: Promise<T>, ms: number, err: () => Error): Promise<T> {
  let cancel = () => undefined as void;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      cancel = afterWorking(ms, () => reject(err()));
    }),
  ]).finally(() => cancel());
}

/**
 * The TCP socket ssh2 dialled itself (no jump host, no ProxyCommand). ssh2 keeps it on a field its
 * types don't declare; it reads it with 'data' listeners, so one more listener takes nothing from it.
 */
function socketOf(client: Client): Duplex | undefined {
  return (client as unknown as { _sock?: Duplex })._sock;
}

function preferTypes(known: string[]): string[] {
  // rsa keys are offered under the rsa-sha2 signature names.
  const expanded = known.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
  return [...new Set(expanded)];
}

function describeConnectError(err: Error & { level?: string; code?: string }, ep: Endpoint, stage: 'tcp' | 'ssh', tried: string[]): string {
  const where = `${ep.user}@${ep.host}:${ep.port}${ep.jump ? ` (via ${ep.jump.host})` : ''}`;
  if (err.level === 'client-authentication')
    return `authentication as ${ep.user} failed at ${ep.host}:${ep.port}: the server accepted none of ${tried.join(', ')}`;
  if (err.level === 'client-timeout') return `no SSH handshake with ${where} within ${ep.connectTimeoutMs / 1000} s`;
  if (stage === 'tcp' || err.level === 'client-socket') {
    const code = err.code ? `${err.code}` : printable(err.message);
    return `TCP connection to ${ep.host}:${ep.port} failed (${code})`;
  }
  return `SSH with ${where} failed: ${printable(err.message)}`;
}
