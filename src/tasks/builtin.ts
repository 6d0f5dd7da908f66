import type { AnyTask } from './types.js';
import ping from './ping.js';
import file from './file.js';
import command from './command.js';
import packageTask from './package.js';
import service from './service.js';
import sysctl from './sysctl.js';
import kernelModule from './kernel-module.js';
import swap from './swap.js';
import lineInFile from './line-in-file.js';

/** The engine's own tasks, which know nothing of what a module provisions. */
export const builtinTasks: readonly AnyTask[] = [ping, file, command, packageTask, service, sysctl, kernelModule, swap, lineInFile];
