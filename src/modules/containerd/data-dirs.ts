import type { HostPathSpec } from '../../tasks/types.js';
import { OWN_DIRS } from './config/validate.js';
import type { ContainerdSettings } from './settings.js';

/**
 * What containerd makes in its root and state directories (1.x and 2.x): a directory holding only
 * these is containerd's data, and these are what a reset with remove_data takes from a data
 * directory hoist did not create. `opt` is the opt plugin's directory where a distribution's
 * build keeps it in the root (Debian's: /var/lib/containerd/opt instead of /opt/containerd).
 */
export const CONTAINERD_DATA_ENTRIES = ['io.containerd.*', 'tmpmounts', 'containerd.sock', 'containerd.sock.ttrpc', 'runc', 's', 'opt'];

/**
 * Every containerd path variable hoist writes under or deletes, for the engine to resolve on the
 * host: root_dir and state_dir are data (containerd fills them, a reset with remove_data deletes
 * them); config_path, imports_dir and the CNI directories get files hoist writes or removes.
 */
export function containerdHostPaths(st: ContainerdSettings): HostPathSpec {
  const rt = st.runtime;
  return {
    paths: [
      { variable: 'root_dir', path: rt.rootDir, data: true },
      { variable: 'state_dir', path: rt.stateDir, data: true },
      { variable: 'config_path', path: rt.configPath },
      ...(rt.importsDir ? [{ variable: 'imports_dir', path: rt.importsDir }] : []),
      { variable: 'cni_bin_dir', path: rt.cniBinDir },
      { variable: 'cni_conf_dir', path: rt.cniConfDir },
    ],
    allowData: st.allowDataDirs,
    allowVariable: 'allow_data_dir',
    protected: OWN_DIRS,
    dataEntries: CONTAINERD_DATA_ENTRIES,
  };
}
