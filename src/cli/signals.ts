import type { HostReport } from '../runner/report.js';
import { EXIT } from '../runner/report.js';
import { hostProgress, interruption, type InterruptSignal } from '../runner/interrupt.js';
import { signalChildren } from '../util/children.js';
import { stillDrained } from '../runner/drain-journal.js';
import type { Logger } from '../util/log.js';
import { printableLines, terminalText } from '../util/printable.js';

// Taken before a live view starts: listr2 buffers process.stderr while it draws, and a message
// about a second Ctrl-C must reach the screen before hoist exits.
const rawStderr = process.stderr.write.bind(process.stderr);

export const exitCodeOfSignal = (s: InterruptSignal): number => (s === 'SIGINT' ? EXIT.sigint : EXIT.sigterm);

const AFTERWARDS = "Files hoist writes are replaced atomically and a host's lock ends with its connection: run the same command again to converge.";

/**
 * What an interrupted run did, host by host. `reports`: the hosts' own reports once the run wound
 * down (first signal); without them (a second signal, exiting at once) what is known at this moment.
 */
export function interruptAccount(a: {
  signal: InterruptSignal;
  hosts: string[];
  /** Hosts inside a changing step when the signal came, and that step. */
  midStep: Map<string, string>;
  reports?: HostReport[];
  /** Controller processes (hooks, ProxyCommands) hoist stopped. */
  stopped: string[];
  atOnce: boolean;
}): string {
  const lines = [`interrupted by ${a.signal}${a.atOnce ? ', stopping at once' : ''}:`];
  const byName = new Map((a.reports ?? []).map((r) => [r.name, r]));
  for (const h of a.hosts) {
    const mid = a.midStep.get(h);
    const r = byName.get(h);
    let what: string;
    if (a.atOnce) {
      const done = hostProgress.done.get(h);
      if (mid) what = `cut off in ${mid}: that step may be half done`;
      else if (done) what = `had finished (${done})`;
      else if (hostProgress.started.has(h)) what = 'stopped between steps (connecting, reading, planning or between tasks): nothing was cut off';
      else what = 'not started';
    } else if (!r) what = 'not started';
    else if (r.reason === 'interrupted' || (r.status === 'skipped' && r.error?.includes('interrupted'))) {
      what = `${mid ? `was in ${mid} and finished it; ` : ''}${r.error ?? 'stopped'}`;
    } else what = `${mid ? `was in ${mid}; ` : ''}ended ${r.status}${r.error ? `: ${r.error}` : ''}`;
    lines.push(`  ${h}: ${printableLines(what)}`);
  }
  if (a.hosts.length === 0) lines.push('  no host had been contacted yet');
  // A drain whose uncordon did not run is the one thing an on-call must not miss.
  const drained = a.reports
    ? a.reports.filter((r) => r.stillDrained).map((r) => `${r.name}: ${r.stillDrained}`)
    : stillDrained().map((d) => `${d.host}: the after_host hooks of ${d.playbook} are owed; the next run of any playbook on ${d.host} runs them first`);
  for (const d of drained) lines.push(`STILL DRAINED: ${printableLines(d)}`);
  for (const s of a.stopped) lines.push(`  stopped ${printableLines(s)}`);
  lines.push(AFTERWARDS);
  return lines.join('\n');
}

export interface SignalWatch {
  /** Processes stopped at the first signal, the hosts' steps at that moment. */
  readonly stopped: string[];
  readonly midStep: Map<string, string>;
  /** The run's hosts are known and the run may wind down on its own (else a signal exits at once). */
  running(hosts: string[], onFirst: (s: InterruptSignal) => void): void;
  dispose(): void;
}

/**
 * SIGINT and SIGTERM, for the whole command. During a run, the first asks every host to finish its
 * current step and start nothing new (the command then exits 130 or 143 with an account of each host);
 * a second, or one before any host is worked on, exits at once with what is known.
 */
export function watchSignals(log: Logger): SignalWatch {
  let hosts: string[] = [];
  let first: ((s: InterruptSignal) => void) | undefined;
  const stopped: string[] = [];
  const midStep = new Map<string, string>();
  const atOnce = (signal: InterruptSignal) => {
    const killed = signalChildren('SIGKILL', 'all');
    const text = interruptAccount({ signal, hosts, midStep: new Map([...midStep, ...hostProgress.inFlight]), stopped: [...stopped, ...killed], atOnce: true });
    // The cursor a live view hid comes back with the message.
    rawStderr(`${process.stderr.isTTY ? '\x1b[?25h' : ''}\n${terminalText(text)}\n`);
    log.log('hoist', text);
    log.log('hoist', `exit ${exitCodeOfSignal(signal)}`);
    const exit = () => process.exit(exitCodeOfSignal(signal));
    setTimeout(exit, 1000).unref();
    void log.close().then(exit, exit);
  };
  const on = (signal: InterruptSignal) => () => {
    if (!first || interruption.signal) return atOnce(interruption.signal ?? signal);
    for (const [h, step] of hostProgress.inFlight) midStep.set(h, step);
    interruption.request(signal);
    stopped.push(...signalChildren('SIGTERM', 'interrupt'));
    log.log(
      'hoist',
      `${signal}: no new step starts; mid-step: ${[...midStep].map(([h, s]) => `${h} (${s})`).join(', ') || 'none'}${stopped.length ? `; stopped ${stopped.join(', ')}` : ''}`,
    );
    first(signal);
  };
  const onInt = on('SIGINT');
  const onTerm = on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    stopped,
    midStep,
    running(h, onFirst) {
      hosts = h;
      first = onFirst;
    },
    dispose() {
      process.removeListener('SIGINT', onInt);
      process.removeListener('SIGTERM', onTerm);
    },
  };
}
