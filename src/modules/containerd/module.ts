import { defineModule } from '../../tasks/types.js';
import { containerdSettings, containerdVariables } from './settings.js';
import libseccomp from './tasks/libseccomp.js';
import artifacts from './tasks/artifacts.js';
import install from './tasks/install.js';
import config from './tasks/config.js';
import registries from './tasks/registries.js';
import service from './tasks/service.js';
import verify from './tasks/verify.js';
import reset from './tasks/reset.js';
import { containerdHostPaths } from './data-dirs.js';
import { registryCredentialsIn } from './config/registry-credentials.js';
import cni from './tasks/cni.js';
import podTest from './tasks/pod-test.js';

/** containerd from upstream release artifacts: installed, configured, run under systemd, verified, removed. */
export const containerdModule = defineModule({
  name: 'containerd',
  variables: containerdVariables,
  settings: containerdSettings,
  credentialsIn: registryCredentialsIn,
  hostPaths: containerdHostPaths,
  tasks: [libseccomp, artifacts, install, config, cni, registries, service, verify, podTest, reset],
});
