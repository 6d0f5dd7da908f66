import { recapOf, type HostReport, type RunReport } from '../runner/report.js';
import path from 'node:path';
import { printableLines, SGR, SGR_CODE } from '../util/printable.js';

const useColor = () => process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

// Colors are written with SGR (not ESC) and become escape sequences at the output boundary (terminalText).
const paint = (code: number) => (s: string) => (useColor() ? `${SGR}[${code}m${s}${SGR}[0m` : s);
export const color = { green: paint(32), yellow: paint(33), red: paint(31), dim: paint(2), bold: paint(1), cyan: paint(36) };

export function statusColor(status: string): (s: string) => string {
  switch (status) {
    case 'changed':
      return color.yellow;
    case 'failed':
    case 'unreachable':
      return color.red;
    case 'skipped':
      return color.cyan;
    default:
      return color.green;
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => stripAnsi(r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - stripAnsi(c).length)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const stripAnsi = (s: string) => s.replace(SGR_CODE, '');

export function formatPlan(report: RunReport, withDiffs: boolean): string {
  const rows: string[][] = [['HOST', 'TASK', 'CHANGE']];
  const diffs: string[] = [];
  for (const h of report.hosts) {
    for (const t of h.tasks) {
      for (const c of t.changes) rows.push([h.name, t.title, color.yellow(c)]);
      if (withDiffs) for (const d of t.diffs) diffs.push(`${color.bold(`── ${h.name}: ${t.title}`)}\n${colorDiff(d)}`);
    }
  }
  const head = `${formatHooks(report)}${color.bold(`PLAN (check mode: nothing was changed)`)}`;
  if (rows.length === 1) {
    const reached = report.hosts.filter((h) => h.status === 'ok' || h.status === 'changed').length;
    const verdict =
      reached === report.hosts.length
        ? 'no changes: every host already matches the playbook'
        : `no changes on the ${reached} host(s) that could be planned; see the recap for the others`;
    return `${head}\n${verdict}\n`;
  }
  return `${head}\n${table(rows)}\n${diffs.length ? `\n${diffs.join('\n')}\n` : ''}`;
}

/** Every hook of the play and where it comes from: a base playbook's hooks are inherited, and this shows it. */
export function formatHooks(report: RunReport): string {
  if (!report.hooks?.length) return '';
  const here = process.cwd() + path.sep;
  const rows = report.hooks.map((h) => [
    h.kind,
    h.on,
    printableLines(h.run),
    `${h.file.startsWith(here) ? h.file.slice(here.length) : h.file}${h.line ? `:${h.line}` : ''}`,
  ]);
  return `${color.bold('HOOKS (run on hosts that change; base playbooks first)')}\n${table([['KIND', 'ON', 'RUN', 'FROM'], ...rows])}\n\n`;
}

export function colorDiff(d: string): string {
  return d
    .split('\n')
    .map((l) => (l.startsWith('+') && !l.startsWith('+++') ? color.green(l) : l.startsWith('-') && !l.startsWith('---') ? color.red(l) : l))
    .join('\n');
}

export function formatRecap(report: RunReport): string {
  const rows: string[][] = [];
  for (const h of report.hosts) {
    const c = recapOf(h);
    rows.push([
      statusColor(h.status)(h.name),
      `ok=${c.ok}`,
      c.changed ? color.yellow(`changed=${c.changed}`) : `changed=0`,
      c.failed ? color.red(`failed=${c.failed}`) : 'failed=0',
      c.unreachable ? color.red(`unreachable=${c.unreachable}`) : 'unreachable=0',
      `skipped=${c.skipped}`,
    ]);
  }
  // Each failure was told in full on its host's line; the recap names the hosts, it doesn't repeat them.
  const failedHosts = report.hosts.filter((h) => h.status === 'failed' || h.status === 'unreachable');
  const problems = failedHosts.length
    ? [
        color.red(
          `${failedHosts.length} host(s) did not finish: ${failedHosts.map((h) => `${h.name} (${h.status})`).join(', ')}; the reasons are on their lines above`,
        ),
      ]
    : [];
  const notes = report.hosts.flatMap((h) => [
    ...h.notes.map((n) => `${h.name} | ${printableLines(n)}`),
    ...h.tasks.flatMap((t) => t.notes.map((n) => `${h.name} | ${t.title} | ${printableLines(n)}`)),
  ]);
  return [
    color.bold(`PLAY RECAP (${(report.durationMs / 1000).toFixed(2)} s)`),
    table(rows),
    ...(notes.length ? ['', ...notes.map(color.dim)] : []),
    ...(problems.length ? ['', ...problems] : []),
    ...report.hosts.flatMap((h) => h.notes.filter((n) => n.startsWith('STILL DRAINED')).map((n) => color.red(`${h.name}: ${n}`))),
    ...(report.aborted ? ['', color.red(report.aborted)] : []),
  ].join('\n');
}

export function formatTaskLine(host: string, t: { title: string; status: string; changes: string[]; error?: string }): string {
  const detail = t.error ? `: ${printableLines(t.error)}` : t.changes.length ? `: ${printableLines(t.changes.join('; '))}` : '';
  return `${host} | ${t.title} | ${statusColor(t.status)(t.status)}${detail}`;
}

export function hostLine(h: HostReport): string {
  return `${h.name} | ${statusColor(h.status)(h.status)}${h.error ? `: ${printableLines(h.error)}` : ''}`;
}

export function formatFacts(report: RunReport): string {
  const rows: string[][] = [['HOST', 'OS', 'ARCH', 'KERNEL', 'INIT', 'PKG', 'CGROUP', 'STATE']];
  for (const h of report.hosts) {
    const f = h.facts;
    if (!f) rows.push([h.name, color.red(`${h.status}: ${h.error ?? ''}`), '', '', '', '', '', '']);
    else rows.push([h.name, `${f.osId} ${f.osVersion}`, f.arch, f.kernel, f.init, f.packageManager, `v${f.cgroupVersion}`, f.systemdState ?? '']);
  }
  return table(rows);
}
