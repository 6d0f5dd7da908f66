/** The containerd runtime configuration a playbook asks for, as validate.ts types it. */
import { addSecret } from '../../../util/redact.js';
import type { Version } from '../version.js';

export type Capability = 'pull' | 'resolve' | 'push';
export const CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push'];
export const DEFAULT_MIRROR_CAPABILITIES: readonly Capability[] = ['pull', 'resolve'];

/** A credential; printing, logging or JSON-serialising it yields a placeholder, never the value. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    addSecret(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret(***)';
  }
}

export interface TlsFiles {
  /** CA bundle, a path on the controller; hoist pushes it (see registryFiles). */
  ca: string | null;
  /** Client certificate and key for mutual TLS, controller paths; both or neither. */
  clientCert: string | null;
  clientKey: string | null;
  skipVerify: boolean;
}

export interface MirrorConfig extends TlsFiles {
  /** http:// or https:// URL, kept exactly as written. */
  url: string;
  /** Canonical order (pull, resolve, push), no duplicates. */
  capabilities: Capability[];
  overridePath: boolean;
  /** Header name → values; a single value renders as a string. */
  headers: Record<string, string[]>;
}

export type RegistryAuth =
  | { kind: 'basic'; username: string; password: Secret }
  /** A docker-config style `auth`: base64 of "user:password". */
  | { kind: 'auth'; auth: Secret };

export interface RegistryConfig extends TlsFiles {
  /** The registry host as it appears in image references: `docker.io`, `registry.example:5000`, or `_default`. */
  host: string;
  /**
   * The upstream endpoint tried after the mirrors. Defaults to what containerd itself would use
   * (https://registry-1.docker.io for docker.io, otherwise https:// or, with insecure_http,
   * http:// plus the host). Null only for `_default`, which stands for every registry.
   */
  server: string | null;
  mirrors: MirrorConfig[];
  insecureHttp: boolean;
  auth: RegistryAuth | null;
}

export interface RuntimeConfig {
  /** Canonical X.Y.Z[-pre] form. */
  containerdVersion: string;
  version: Version;
  systemdCgroup: boolean;
  sandboxImage: string;
  rootDir: string;
  stateDir: string;
  oomScore: number;
  /**
   * CRI's restrict_oom_score_adj: sandboxes and containers get an oom_score_adj no lower than
   * containerd's own, for nodes without CAP_SYS_RESOURCE where runc cannot set -998.
   */
  restrictOomScoreAdj: boolean;
  snapshotter: string;
  cniBinDir: string;
  cniConfDir: string;
  /** Drop-in directory imported as `<dir>/*.toml`; null disables imports. */
  importsDir: string | null;
  /** Registry hosts directory (hosts.toml per registry); pushed cert files live below it too. */
  configPath: string;
  registries: Record<string, RegistryConfig>;
}

/** The parts of a RuntimeConfig that decide how registry files are written; a RuntimeConfig satisfies it. */
export interface RegistryTarget {
  version: Version;
  configPath: string;
}

export const RUNTIME_DEFAULTS = {
  systemd_cgroup: true,
  root_dir: '/var/lib/containerd',
  state_dir: '/run/containerd',
  oom_score: 0,
  restrict_oom_score_adj: false,
  snapshotter: 'overlayfs',
  cni_bin_dir: '/opt/cni/bin',
  cni_conf_dir: '/etc/cni/net.d',
  imports_dir: '/etc/containerd/conf.d',
  config_path: '/etc/containerd/certs.d',
} as const;

export const OLDEST_SUPPORTED = '1.4.0';
