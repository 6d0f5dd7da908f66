import type { AnyTask } from './types.js';
import ping from './ping.js';
import file from './file.js';
import command from './command.js';
import packageTask from './package.js';
import service from './service.js';
import libseccomp from './libseccomp.js';
import containerdArtifacts from './containerd-artifacts.js';
import containerdInstall from './containerd-install.js';
import containerdConfig from './containerd-config.js';
import containerdRegistries from './containerd-registries.js';
import containerdService from './containerd-service.js';
import containerdVerify from './containerd-verify.js';
import containerdReset from './containerd-reset.js';

const tasks = new Map<string, AnyTask>();

export function registerTask(t: AnyTask): void {
  tasks.set(t.name, t);
}

const builtin = [ping, file, command, packageTask, service, libseccomp, containerdArtifacts, containerdInstall, containerdConfig, containerdRegistries, containerdService, containerdVerify, containerdReset];
for (const t of builtin as AnyTask[]) registerTask(t);

export function getTask(name: string): AnyTask | undefined {
  return tasks.get(name);
}

export function taskNames(): string[] {
  return [...tasks.keys()];
}
