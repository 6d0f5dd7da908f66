/**
 * Where a hoist run's time goes, from its log: every line is `<ISO time> [<host or hoist>] <text>`,
 * and each remote command leaves `$ <first line>` when it starts and `exit N in M ms` when it ends
 * (an upload leaves one line, `upload <path> (...): exit N in M ms`, and a host-to-host copy
 * `receive <path> (...) from A:P: exit N in M ms`). Commands are put in phases by
 * what they run; time on a host between its commands is controller-side work or waiting.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const PHASES = [
  'start-up',
  'inputs, connect',
  'wait for prepare',
  'probes',
  'push: wait for a sender, re-hash',
  'push',
  'host download',
  'unpack',
  'config files',
  'daemon start',
  'verification',
  'between commands',
  'CRI check, finish',
  'exit',
] as const;
export type Phase = (typeof PHASES)[number];

export interface HostPhases {
  host: string;
  /** ms since the process started, per phase. */
  ms: Record<Phase, number>;
  endMs: number;
}

export interface RunPhases {
  hosts: HostPhases[];
  /** The host that finished last: its phases are the run's critical path. */
  slowest?: HostPhases;
  /** Headlines of commands that fit no phase (counted under "between commands"). */
  unclassified: string[];
}

const LINE = /^(\S+) \[([^\]]+)\] (.*)$/;
const EXIT = /^exit -?\d+ in (\d+) ms$/;
const UPLOAD = /^(?:upload|receive) (\S+) \([^)]*\)(?: from \S+)?: exit -?\d+ in (\d+) ms$/;

function classify(headline: string): Phase | undefined {
  // The gathering round trip opens with the clock; verification's reads run side by side from the first line.
  if (/^echo '@@hoist-[0-9a-f]+ begin __(clock0|lock|facts)'/.test(headline)) return 'probes';
  if (/^__section0\(\) \{$/.test(headline)) return 'verification';
  if (headline.startsWith('/var/lib/hoist/artifacts/')) return 'push';
  // `set -e; …; curl …` is skipped as a headline; the checksum line after it is shown.
  if (/^got=\$\(sha256sum < .*\/var\/lib\/hoist\/artifacts\/|curl .*\/var\/lib\/hoist\/artifacts/.test(headline)) return 'host download';
  if (headline.startsWith(`trap 'echo "install step failed`)) return 'unpack';
  if (/^systemctl /.test(headline)) return 'daemon start';
  if (/^(\/etc\/|\/var\/lib\/hoist\/containerd\/|mkdir -p \/etc\/)/.test(headline)) return 'config files';
  return undefined;
}

/**
 * The process start is `spawnedAt`; the log's name holds the time hoist opened it, first thing:
 * "start-up" is node and hoist's modules loading, "inputs, connect" reading the inventory and the
 * playbook and connecting.
 */
export function runPhases(logFile: string, spawnedAt: number, exitedAt: number): RunPhases {
  const stamp = /^(\d{4}-\d\d-\d\dT\d\d)-(\d\d)-(\d\d)-(\d{3})Z/.exec(path.basename(logFile));
  const opened = stamp ? Date.parse(`${stamp[1]}:${stamp[2]}:${stamp[3]}.${stamp[4]}Z`) : spawnedAt;
  const perHost = new Map<
    string,
    { connected?: number; done?: number; cmds: { start: number; end: number; phase?: Phase; head: string }[]; pending?: { start: number; head: string } }
  >();
  let prepared: number | undefined;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, iso, scope, text] = m;
    const t = Date.parse(iso);
    if (scope === 'hoist') {
      if (text.startsWith('prepared ')) prepared = t;
      continue;
    }
    let h = perHost.get(scope);
    if (!h) perHost.set(scope, (h = { cmds: [] }));
    if (text.startsWith('connected: ')) h.connected = t;
    else if (/^host (ok|changed|failed|unreachable|skipped)\b/.test(text)) h.done = t;
    else if (text.startsWith('$ ')) h.pending = { start: t, head: text.slice(2).replace(/ \(sudo\)$/, '') };
    else if (EXIT.test(text) && h.pending) {
      const ms = Number(EXIT.exec(text)![1]);
      h.cmds.push({ start: t - ms, end: t, head: h.pending.head, phase: classify(h.pending.head) });
      h.pending = undefined;
    } else if (UPLOAD.test(text)) {
      const [, target, ms] = UPLOAD.exec(text)!;
      h.cmds.push({ start: t - Number(ms), end: t, head: `upload ${target}`, phase: classify(target) });
    }
  }
  const unclassified = new Set<string>();
  const hosts: HostPhases[] = [];
  for (const [host, h] of perHost) {
    if (h.connected === undefined || h.done === undefined) continue;
    const ms = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
    ms['start-up'] = opened - spawnedAt;
    ms['inputs, connect'] = h.connected - opened;
    const firstCmd = h.cmds[0]?.start ?? h.done;
    ms['wait for prepare'] = Math.max(0, Math.min(prepared ?? h.connected, firstCmd) - h.connected);
    let cursor = Math.max(h.connected, Math.min(prepared ?? h.connected, firstCmd));
    for (const c of h.cmds) {
      // Before a push the host waits for a free sender (the controller or a host holding the file),
      // and the controller re-hashes the cached archive before it sends it.
      ms[c.phase === 'push' ? 'push: wait for a sender, re-hash' : 'between commands'] += Math.max(0, c.start - cursor);
      const phase = c.phase ?? 'between commands';
      if (!c.phase) unclassified.add(c.head.slice(0, 80));
      ms[phase] += c.end - Math.max(c.start, cursor);
      cursor = Math.max(cursor, c.end);
    }
    ms['CRI check, finish'] = Math.max(0, h.done - cursor);
    ms.exit = exitedAt - h.done;
    hosts.push({ host, ms, endMs: h.done - spawnedAt });
  }
  const slowest = hosts.reduce<HostPhases | undefined>((a, b) => (!a || b.endMs > a.endMs ? b : a), undefined);
  return { hosts, slowest, unclassified: [...unclassified] };
}
