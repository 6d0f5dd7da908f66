/**
 * The README's first command: a local fleet of 3 hosts and the containerd playbook run on it,
 * with the newest release the local mirror offers (or DEMO_VERSION).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as fleet from './fleet.js';
import { HOIST, ROOT } from '../support/hoist.js';

await fleet.prepare();
const info = await fleet.up(3);
const want = process.env.DEMO_VERSION;
const rel = want
  ? info.releases.find((r) => r.containerd === want)
  : [...info.releases].sort((a, b) => a.containerd.localeCompare(b.containerd, undefined, { numeric: true })).pop();
if (!rel) throw new Error(`the local mirror has no containerd ${want}; it offers ${info.releases.map((r) => r.containerd).join(', ')}`);
const args = ['apply', path.join(ROOT, 'playbooks', 'containerd.toml'), '-i', info.inventoryPath, '-e', `containerd_version="${rel.containerd}"`];
if (rel.kind === 'components') args.push('-e', 'crictl_version=false', '-e', `runc_version="${rel.runc}"`, '-e', `cni_version="${rel.cni}"`);
process.stdout.write(`\nhoist ${args.join(' ')}\n\n`);
const r = spawnSync(process.execPath, [HOIST, ...args], { stdio: 'inherit' });
process.stdout.write(
  `\nThe fleet is still up: rerun the command above (nothing changes), try --check --diff -e oom_score=-500, or \`npm run fleet -- down\`.\n`,
);
process.exit(r.status ?? 1);
