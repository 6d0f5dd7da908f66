import path from 'node:path';
import { loadInventory } from '../inventory/inventory.js';
import { loadPlaybook } from '../playbook/playbook.js';
import { PACKAGE_ROOT } from '../paths.js';
import { parseExtraVars } from './extra-vars.js';
import { containerdSettings } from '../tasks/containerd/settings.js';
import { ensureArtifacts } from '../artifacts/download.js';
import type { Artifact } from '../artifacts/catalog.js';

/** Pre-fills the artifact cache with what a playbook would install, so a later --offline run needs no network. */
export async function fetchArtifacts(o: { playbook?: string; inventory?: string; extraVars?: string[]; cacheDir?: string }): Promise<number> {
  const pb = await loadPlaybook(o.playbook ?? path.join(PACKAGE_ROOT, 'playbooks', 'containerd.toml'));
  const extra = await parseExtraVars(o.extraVars ?? []);
  const hostVars = o.inventory ? (await loadInventory(o.inventory)).hosts.map((h) => h.vars) : [{}];
  const wanted = new Map<string, Artifact>();
  for (const hv of hostVars) {
    for (const a of containerdSettings({ ...pb.defaults, ...hv, ...pb.vars, ...extra }).artifacts) wanted.set(a.url, a);
  }
  let last = '';
  const got = await ensureArtifacts([...wanted.values()], {
    cacheDir: o.cacheDir,
    onProgress: (bytes, total, a) => {
      const line = `${a.name} ${total ? `${Math.floor((bytes / total) * 100)}%` : `${(bytes / 1e6).toFixed(1)} MB`}`;
      if (line !== last && (!total || bytes === total || Math.floor((bytes / total) * 10) !== Math.floor(((bytes - 1) / total) * 10))) process.stderr.write(`${line}\n`);
      last = line;
    },
  });
  for (const g of got) process.stdout.write(`${g.fromCache ? 'cached ' : 'fetched'} ${g.artifact.name} sha256:${g.sha256} (${(g.size / 1e6).toFixed(1)} MB)\n`);
  return 0;
}
