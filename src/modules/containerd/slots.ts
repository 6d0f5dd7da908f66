import { slot } from '../../tasks/slot.js';
import type { ContainerdArtifact } from './catalog.js';

/** What the containerd tasks of one host hand each other while planning. */

/** An artifact as the host will hold it: content-addressed, so presence means the right bytes. */
export interface StagedArtifact {
  artifact: ContainerdArtifact;
  sha256: string;
  size?: number;
  /** Controller mode: where the verified file is cached; pushed from there. */
  dl?: { cacheDir?: string; offline: boolean };
  remotePath: string;
  url: string;
}

export const stagedArtifacts = slot<StagedArtifact[]>('containerd.staged', 'the release artifacts staged on the host');

/** The version installed before this run (undefined on a fresh host): what a rollback returns to. */
export const previousVersion = slot<string | undefined>('containerd.previous', 'the containerd version installed before this run');

/** The restart stamp the running daemon was started with, restored by a rollback. */
export const stampBefore = slot<string>('containerd.stamp', 'the restart stamp of the running containerd');

/**
 * Set when the daemon was not answering as the host was read (stopped, failed, still starting) or
 * is (re)started by this run: verification then reads it again and waits out its settle window.
 */
export const daemonSettling = slot<true>('containerd.settling', 'whether containerd is being started by this run');
