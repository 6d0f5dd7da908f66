import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import SSHConfig from 'ssh-config';

export interface SshConfigEntry {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  proxyJump?: string;
  proxyCommand?: string;
  identitiesOnly?: boolean;
}

let cached: Promise<SSHConfig | null> | undefined;

function load(): Promise<SSHConfig | null> {
  const file = process.env.HOIST_SSH_CONFIG ?? path.join(os.homedir(), '.ssh', 'config');
  cached ??= readFile(file, 'utf8').then(
    (t) => SSHConfig.parse(t),
    () => null,
  );
  return cached;
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** What ~/.ssh/config says about a host, as OpenSSH would compute it (first match wins per key). */
export async function sshConfigFor(host: string): Promise<SshConfigEntry> {
  const cfg = await load();
  if (!cfg) return { identityFiles: [] };
  const c = cfg.compute(host);
  const ids = c.IdentityFile === undefined ? [] : Array.isArray(c.IdentityFile) ? c.IdentityFile : [c.IdentityFile];
  const port = first(c.Port);
  const jump = first(c.ProxyJump);
  const proxy = first(c.ProxyCommand);
  const only = first(c.IdentitiesOnly);
  return {
    hostName: first(c.HostName)?.replace(/%h/g, host),
    user: first(c.User),
    port: port ? Number(port) : undefined,
    identityFiles: ids.map((f) => (f.startsWith('~/') ? path.join(os.homedir(), f.slice(2)) : f)),
    proxyJump: jump && jump.toLowerCase() !== 'none' ? jump : undefined,
    proxyCommand: proxy && proxy.toLowerCase() !== 'none' ? proxy : undefined,
    identitiesOnly: only === undefined ? undefined : /^(yes|true)$/i.test(only),
  };
}

/** "[user@]host[:port]", the ProxyJump form. */
export function parseJumpSpec(spec: string): { user?: string; host: string; port?: number } {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec.trim());
  if (!m) throw new Error(`invalid jump host "${spec}": expected [user@]host[:port]`);
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : undefined };
}
