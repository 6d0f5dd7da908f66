import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './paths.js';
import { $ } from './sh.js';

/**
 * The Debian mirror this machine already uses. Read at run time so its address is never copied
 * into the repository or into anything the fleet writes.
 */
export function debianMirror(): string {
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(deb822)) {
    for (const stanza of readFileSync(deb822, 'utf8').split(/\n\s*\n/)) {
      const uris = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1] ?? '';
      if (uris && !/-security\b/.test(suites)) return uris.replace(/\/+$/, '');
    }
  }
  const legacy = '/etc/apt/sources.list';
  if (existsSync(legacy)) {
    for (const line of readFileSync(legacy, 'utf8').split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (m && !m[2].endsWith('-security')) return m[1].replace(/\/+$/, '');
    }
  }
  throw new Error('no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list');
}

export interface AptEnv {
  suite: string;
  dir: string;
  configPath: string;
  /** Run apt-get/apt-cache against this private configuration only. */
  run(tool: 'apt-get' | 'apt-cache', args: string[], opts?: { cwd?: string; nothrow?: boolean }): Promise<{ ok: boolean; stdout: string; stderr: string }>;
}

/**
 * A self-contained apt configuration for one suite: own sources, state, cache and config parts,
 * so nothing from the controller's own apt setup (or its package state) leaks in. Callers that
 * resolve dependencies against a target system pass `-o Dir::State::status=<its dpkg status>`.
 */
export function aptEnv(suite: string, opts: { architectures?: string[] } = {}): AptEnv {
  const archs = opts.architectures ?? ['amd64'];
  const dir = join(CACHE_DIR, 'apt-env', `${suite}-${archs.join('+')}`);
  for (const d of ['etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d', 'etc/trusted.gpg.d', 'state/lists/partial', 'cache/archives/partial']) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  const emptyStatus = join(dir, 'state/status');
  if (!existsSync(emptyStatus)) writeFileSync(emptyStatus, '');
  writeFileSync(join(dir, 'etc/sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${debianMirror()} ${suite} main\n`);
  const configPath = join(dir, 'apt.conf');
  const conf = [
    `Dir "/";`,
    `Dir::Etc "${dir}/etc/";`,
    `Dir::Etc::main "${dir}/etc/apt.conf";`,
    `Dir::Etc::Parts "${dir}/etc/apt.conf.d/";`,
    `Dir::Etc::SourceList "${dir}/etc/sources.list";`,
    `Dir::Etc::SourceParts "${dir}/etc/sources.list.d/";`,
    `Dir::Etc::Preferences "${dir}/etc/preferences";`,
    `Dir::Etc::PreferencesParts "${dir}/etc/preferences.d/";`,
    `Dir::Etc::TrustedParts "${dir}/etc/trusted.gpg.d/";`,
    `Dir::State "${dir}/state/";`,
    `Dir::State::status "${emptyStatus}";`,
    `Dir::Cache "${dir}/cache/";`,
    `APT::Architecture "amd64";`,
    `APT::Architectures { ${archs.map((a) => `"${a}";`).join(' ')} };`,
    `Acquire::Languages "none";`,
    `Acquire::Retries "3";`,
    // Mirrors that lag behind (or a machine clock ahead of them) leave a fresh-looking Release "expired";
    // signatures are still checked.
    `Acquire::Check-Valid-Until "false";`,
    `Debug::NoLocking "true";`,
    `APT::Sandbox::User "root";`,
    '',
  ].join('\n');
  writeFileSync(configPath, conf);
  return {
    suite,
    dir,
    configPath,
    async run(tool, args, o = {}) {
      const p = $({ cwd: o.cwd, env: { ...process.env, APT_CONFIG: configPath, DEBIAN_FRONTEND: 'noninteractive' } })`${tool} ${args}`.nothrow();
      const r = await p;
      if (r.exitCode !== 0 && !o.nothrow) {
        throw new Error(`${tool} ${args.join(' ')} (${suite}) failed: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
      }
      return { ok: r.exitCode === 0, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

/**
 * Debian version → upstream version: `1.7.24~ds1-5` → `1.7.24`, `1:2.3-1` → `2.3`; an upstream
 * pre-release marker survives as upstream writes it: `1.0.0~rc93+ds1-5` → `1.0.0-rc93`.
 */
export function upstreamVersion(debianVersion: string): string {
  const m = /^(?:\d+:)?(\d+(?:\.\d+)*)(?:~(rc|beta|alpha)(\d+))?/.exec(debianVersion);
  if (!m) throw new Error(`unparseable Debian version: ${debianVersion}`);
  return m[2] ? `${m[1]}-${m[2]}${m[3]}` : m[1];
}
