import { s } from '../util/schema.js';
import { quote } from '../ssh/quote.js';
import { sha256 } from '../util/hash.js';
import type { ProbeResult } from '../facts/probe.js';
import { fileRead, type FileState } from '../facts/reads.js';
import { defineTask, type Action } from './types.js';
import { parseFileProbe, planFile } from './lib/files.js';
import { HostError } from '../util/errors.js';

/** What a swap line becomes: a comment that says why, and that reads back as no swap. */
export const SWAP_OFF_MARK = '# swap kept off by hoist: ';

/** The fstab with every active swap line commented out; other lines, comments and spacing as they were. */
export function commentSwapLines(fstab: string): { text: string; commented: string[] } {
  const commented: string[] = [];
  const text = fstab
    .split('\n')
    .map((line) => {
      const t = line.trim();
      if (!t || t.startsWith('#')) return line;
      const fields = t.split(/\s+/);
      if (fields[2] !== 'swap') return line;
      commented.push(fields[0]);
      return `${SWAP_OFF_MARK}${line}`;
    })
    .join('\n');
  return { text, commented };
}

/** Active swap areas from /proc/swaps (`swap NAME` lines). */
export function parseSwaps(r: ProbeResult): string[] {
  if (r.code !== 0) throw new HostError(`could not read /proc/swaps: ${r.out.trim() || `exit ${r.code}`}`);
  return [...r.out.matchAll(/^swap (\S+)/gm)].map((m) => m[1].replace(/\\040/g, ' '));
}

export interface SwapUnit {
  /** The unit file state list-unit-files gives (enabled, disabled, static, generated, masked …). */
  state: string;
  /** The unit file is the administrator's own, in /etc/systemd/system: masking would have to replace it. */
  admin: boolean;
}

/** systemd swap units (`unit STATE admin|vendor` lines). */
export function parseSwapUnits(r: ProbeResult): Map<string, SwapUnit> {
  const units = new Map<string, SwapUnit>();
  for (const line of r.out.split('\n')) {
    const [unit, state, where] = line.trim().split(/\s+/);
    if (unit?.endsWith('.swap') && state) units.set(unit, { state, admin: where === 'admin' });
  }
  return units;
}

/**
 * What keeps each unit off: a unit from a package, a generator or /run is masked; the
 * administrator's own unit file in /etc/systemd/system is not replaced (masking would have to),
 * it is disabled and stopped, so nothing pulls it in at boot.
 */
export function planUnits(units: Map<string, SwapUnit>): { mask: string[]; disable: string[] } {
  const mask: string[] = [];
  const disable: string[] = [];
  for (const [u, st] of units) {
    if (st.state === 'masked') continue;
    if (!st.admin) mask.push(u);
    else if (st.state.startsWith('enabled')) disable.push(u);
  }
  return { mask, disable };
}

/** A text file's content as the batch read it, checked against its hash: a file bash can't read whole (NUL bytes) is refused. */
export function textOf(path: string, st: FileState): string | undefined {
  if (!st.exists) return undefined;
  if (!st.content || sha256(st.content) !== st.sha256) throw new HostError(`${path} is not a text file hoist can edit`);
  return st.content.toString('utf8');
}

export default defineTask({
  name: 'swap',
  summary:
    "Swap off now (swapoff) and kept off: swap lines in /etc/fstab commented out (atomic rewrite), systemd .swap units masked (or disabled where the unit file is the administrator's).",
  params: s.object({
    fstab: s.string(/^\//, 'an absolute path').default('/etc/fstab').describe('the fstab to keep free of swap'),
    mask_units: s
      .bool()
      .default(true)
      .describe(
        "keep systemd .swap units off: masked (zram, packaged or generated units), or disabled and stopped where the unit file is the administrator's own in /etc/systemd/system",
      ),
  }),
  probes: (p) => ({
    swaps: `{ read -r _; while read -r f t _; do printf 'swap %s %s\\n' "$f" "$t"; done; } < /proc/swaps`,
    fstab: fileRead(p.fstab, 'text'),
    ...(p.mask_units
      ? {
          units: `systemctl list-unit-files --type=swap --plain --no-legend --no-pager 2>/dev/null | while read -r u st _; do w=vendor; if [ -f "/etc/systemd/system/$u" ] && [ ! -L "/etc/systemd/system/$u" ]; then w=admin; fi; echo "$u $st $w"; done; true`,
        }
      : {}),
  }),
  plan(p, ctx) {
    const actions: Action[] = [];
    const active = parseSwaps(ctx.probe('swaps'));
    if (active.length) {
      ctx.state.pending = true;
      actions.push({
        kind: 'change',
        summary: `swapoff ${active.join(', ')}`,
        run: (conn) => conn.check(`swapoff -- ${active.map(quote).join(' ')}`, `turning off swap on ${active.join(', ')}`).then(() => undefined),
      });
    }
    const have = parseFileProbe(ctx.probe('fstab'));
    // An earlier task that writes the fstab hands over what it will hold.
    const before = ctx.state.fileContents.get(p.fstab)?.toString('utf8') ?? textOf(p.fstab, have);
    if (before !== undefined) {
      const { text, commented } = commentSwapLines(before);
      if (commented.length) {
        const file = planFile(
          { path: p.fstab, content: Buffer.from(text), mode: have.mode ?? 0o644, owner: have.owner, group: have.group },
          have,
          ctx.state,
          ctx.options,
        );
        if (file) actions.push({ ...file, summary: `${file.summary}: comment out swap ${commented.join(', ')}` });
      }
    }
    if (p.mask_units) {
      const { mask, disable } = planUnits(parseSwapUnits(ctx.probe('units')));
      if (mask.length) {
        ctx.state.pending = true;
        actions.push({
          kind: 'change',
          summary: `mask ${mask.join(', ')}`,
          run: (conn) => conn.check(`systemctl mask -- ${mask.map(quote).join(' ')}`, `masking ${mask.join(', ')}`).then(() => undefined),
        });
      }
      if (disable.length) {
        ctx.state.pending = true;
        actions.push({
          kind: 'change',
          summary: `disable and stop ${disable.join(', ')} (unit files in /etc/systemd/system are left in place)`,
          run: (conn) => conn.check(`systemctl disable --now -- ${disable.map(quote).join(' ')}`, `disabling ${disable.join(', ')}`).then(() => undefined),
        });
      }
    }
    return { actions };
  },
});
