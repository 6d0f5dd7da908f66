import path from 'node:path';
import { loadInventory, type Inventory } from '../inventory/inventory.js';
import { loadPlaybook } from '../playbook/playbook.js';
import { FanOut } from '../runner/fan-out.js';
import { resolvePlay } from '../runner/play.js';
import { PACKAGE_ROOT } from '../paths.js';
import { terminalText } from '../util/printable.js';
import { extraVarLayers } from './extra-vars.js';
import { ensureArtifacts } from '../artifacts/download.js';
import type { Artifact } from '../artifacts/artifact.js';
import type { TaskCatalog } from '../tasks/catalog.js';
import type { Controller } from '../tasks/types.js';
import { Logger } from '../util/log.js';

/** Without -i, one host with no variables of its own: the playbook's settings as written. */
function bareInventory(): Inventory {
  const host = { name: '(no inventory)', address: 'localhost', become: false, becomeUser: 'root', groups: [], vars: {}, varLayers: [] };
  return { file: '<none>', hosts: [host], groups: new Map([['all', new Set([host.name])]]), declared: [] };
}

/** Pre-fills the artifact cache with what a playbook would install, so a later --offline run needs no network. */
export async function fetchArtifacts(
  o: { playbook?: string; inventory?: string; extraVars?: string[]; cacheDir?: string },
  catalog: TaskCatalog,
): Promise<number> {
  const pb = await loadPlaybook(o.playbook ?? path.join(PACKAGE_ROOT, 'playbooks', 'containerd.toml'), catalog);
  const inventory = o.inventory ? await loadInventory(o.inventory) : bareInventory();
  // The same resolution as a run: variable precedence, schemas and module settings, all checked.
  // Without an inventory there are no groups to select: the one bare host stands for all of them.
  const play = o.inventory ? pb : { ...pb, hosts: ['all'] };
  const plays = await resolvePlay(inventory, play, await extraVarLayers(o.extraVars ?? []), { catalog });
  const log = new Logger();
  const controller: Controller = {
    playbookDir: pb.dir,
    inventoryDir: path.dirname(path.resolve(inventory.file)),
    cacheDir: o.cacheDir,
    log,
    progress: () => undefined,
    deliver: new FanOut(log).deliver,
  };
  const options = { check: true, diff: false, offline: false };
  const wanted = new Map<string, Artifact>();
  for (const play of plays) {
    for (const t of play.tasks) {
      if (t.skip) continue;
      for (const a of t.def.artifacts?.(t.params, { host: play.host, vars: play.vars, settings: t.settings, options, controller }) ?? []) wanted.set(a.url, a);
    }
  }
  let last = '';
  const got = await ensureArtifacts([...wanted.values()], {
    cacheDir: o.cacheDir,
    onProgress: (bytes, total, a) => {
      const line = `${a.name} ${total ? `${Math.floor((bytes / total) * 100)}%` : `${(bytes / 1e6).toFixed(1)} MB`}`;
      if (line !== last && (!total || bytes === total || Math.floor((bytes / total) * 10) !== Math.floor(((bytes - 1) / total) * 10)))
        process.stderr.write(terminalText(`${line}\n`));
      last = line;
    },
  });
  for (const g of got)
    process.stdout.write(terminalText(`${g.fromCache ? 'cached ' : 'fetched'} ${g.artifact.name} sha256:${g.sha256} (${(g.size / 1e6).toFixed(1)} MB)\n`));
  return 0;
}
