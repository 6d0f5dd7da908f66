import { TaskCatalog } from '../tasks/catalog.js';
import { builtinTasks } from '../tasks/builtin.js';
import { containerdModule } from '../modules/containerd/module.js';
import { kubernetesNodeModule } from '../modules/kubernetes-node/module.js';

/**
 * The composition root: the engine's own tasks and the modules this build of hoist ships.
 * A new module (kubelet, say) is one folder under src/modules/ and one entry here.
 */
export function taskCatalog(): TaskCatalog {
  return new TaskCatalog(builtinTasks, [containerdModule, kubernetesNodeModule]);
}
