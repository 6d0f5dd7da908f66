import { slot } from '../../tasks/slot.js';
import type { StagedArtifact } from './tasks/artifacts.js';

/** What the containerd tasks of one host hand each other while planning. */

export const stagedArtifacts = slot<StagedArtifact[]>('containerd.staged', 'the release artifacts staged on the host');

/** The version installed before this run (undefined on a fresh host): what a rollback returns to. */
export const previousVersion = slot<string | undefined>('containerd.previous', 'the containerd version installed before this run');

/** The restart stamp the running daemon was started with, restored by a rollback. */
export const stampBefore = slot<string>('containerd.stamp', 'the restart stamp of the running containerd');
