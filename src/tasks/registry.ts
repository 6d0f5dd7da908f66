import type { AnyTask } from './types.js';
import ping from './ping.js';
import file from './file.js';
import command from './command.js';
import packageTask from './package.js';
import service from './service.js';

const tasks = new Map<string, AnyTask>();

export function registerTask(t: AnyTask): void {
  tasks.set(t.name, t);
}

for (const t of [ping, file, command, packageTask, service] as AnyTask[]) registerTask(t);

export function getTask(name: string): AnyTask | undefined {
  return tasks.get(name);
}

export function taskNames(): string[] {
  return [...tasks.keys()];
}
