import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { HostError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { trackChild } from '../util/children.js';

/** OpenSSH's tokens in ProxyCommand: %h host, %p port, %r user, %n the name as given, %% a percent sign. */
export function expandProxyCommand(template: string, t: { host: string; port: number; user: string; name: string }): string {
  return template.replace(/%([hprn%])/g, (_, c: string) => (c === 'h' ? t.host : c === 'p' ? String(t.port) : c === 'r' ? t.user : c === 'n' ? t.name : '%'));
}

export interface ProxyStream {
  sock: Duplex;
  /** Resolves when the command has exited (or after `ms`), for an error message that can say why. */
  settled(ms: number): Promise<void>;
  /** Why the command ended, when it ended before the SSH session did (exit status and its stderr). */
  failure(): string | undefined;
  close(): void;
}

/**
 * Runs a ProxyCommand as OpenSSH does (through /bin/sh, its stdin and stdout the SSH byte stream,
 * its stderr kept for the error message) and returns that stream.
 */
export function startProxyCommand(command: string, name: string): ProxyStream {
  // Its own process group: a Ctrl-C on the terminal (SIGINT to the foreground group) must not cut the
  // connection a host's current step is using; hoist stops it when it exits.
  const child = spawn('/bin/sh', ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  trackChild(child, `ProxyCommand of ${name}`, { group: true, onInterrupt: false });
  let stderr = '';
  let ended: string | undefined;
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString('utf8');
  });
  child.on('error', (e) => {
    ended = `ProxyCommand for ${name} could not start: ${e.message}`;
  });
  child.on('exit', (code, signal) => {
    const tail = printable(stderr.trim().split('\n').slice(-3).join(' / '));
    ended = `ProxyCommand for ${name} (${printable(command)}) exited with ${signal ?? code}${tail ? `: ${tail}` : ''}`;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const sock = Duplex.from({ readable: child.stdout, writable: child.stdin });
  sock.on('error', () => undefined);
  // Its stdio alone must not keep the process alive after the connection is closed.
  child.unref();
  return {
    sock,
    failure: () => ended,
    settled: (ms) => Promise.race([exited, new Promise<void>((r) => setTimeout(r, ms).unref())]),
    close: () => {
      sock.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

export function proxyFailure(p: ProxyStream | undefined, fallback: HostError): HostError {
  const why = p?.failure();
  return why ? new HostError(why) : fallback;
}
