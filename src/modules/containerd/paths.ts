import { moduleStateDir } from '../../host-paths.js';

/** containerd's records on a host: what hoist installed, the stats of each installed file, the previous release. */
export const CONTAINERD_STATE = moduleStateDir('containerd');
export const INSTALL_RECORD = `${CONTAINERD_STATE}/installed.json`;
export const INSTALL_STATS = `${CONTAINERD_STATE}/files.stat`;
/** Every registry file (hosts.toml, CA, client cert/key) hoist wrote, so removed registries can be cleaned up. */
export const REGISTRY_LIST = `${CONTAINERD_STATE}/registry-files.list`;
/**
 * Directories the first install found missing, one a line: containerd makes /opt/containerd/{bin,lib}
 * and the CRI plugin cni_conf_dir when it starts. A reset removes those that are empty; one that
 * existed before hoist is never listed.
 */
export const CREATED_DIRS = `${CONTAINERD_STATE}/created-dirs.list`;
/** containerd's own configuration directory: config.toml, and by default conf.d and certs.d. */
export const CONTAINERD_ETC = '/etc/containerd';
export const CONFIG_FILE = `${CONTAINERD_ETC}/config.toml`;
export const UNIT_FILE = '/etc/systemd/system/containerd.service';
export const CRICTL_YAML = '/etc/crictl.yaml';

/** Installed binaries the daemon runs with: a change to any of them means a restart. */
export const BIN = {
  containerd: '/usr/local/bin/containerd',
  ctr: '/usr/local/bin/ctr',
  crictl: '/usr/local/bin/crictl',
  runc: '/usr/local/sbin/runc',
};
