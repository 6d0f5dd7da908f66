import { quote } from '../../ssh/quote.js';
import type { Probe, ProbeResult } from '../../facts/probe.js';
import { fileRead } from '../../facts/reads.js';
import { parseFileProbe } from './files.js';
import type { Action, PlanState } from '../types.js';
import { sha256 } from '../../util/hash.js';
import { STAMP_DIR } from '../../host-paths.js';
import { HostError } from '../../util/errors.js';

export interface ServiceWant {
  unit: string;
  enabled: boolean;
  state: 'started' | 'stopped' | 'restarted';
  /** Files whose content the running daemon must reflect: when one differs from the last (re)start, restart. */
  restartOn: string[];
  /** Unit file paths, to know a daemon-reload is due when one of them changes. */
  unitFiles: string[];
}

export interface ServiceState {
  loaded: boolean;
  enabled: string;
  active: string;
  needReload: boolean;
  stamp: string;
  hashes: Map<string, string>;
  /** When the unit last became active (epoch seconds), and when each trigger file last changed. */
  startedAt?: number;
  mtimes: Map<string, number>;
}

/**
 * The service's state from one systemctl call; the trigger files' hashes and change times come from
 * the round trip's file batch. The start time is only needed to adopt a service hoist has no stamp
 * for, so `date` runs only then.
 */
export function serviceProbes(w: ServiceWant): Record<string, Probe> {
  const u = quote(w.unit);
  const stamp = quote(`${STAMP_DIR}/${w.unit}`);
  const props = ['UnitFileState', 'ActiveState', 'LoadState', 'NeedDaemonReload', ...(w.restartOn.length ? ['ActiveEnterTimestamp'] : [])];
  const lines = [
    `show=$(systemctl show ${props.map((p) => `-p ${p}`).join(' ')} ${u} 2>/dev/null); printf '%s\\n' "$show"`,
    `s=; [ -f ${stamp} ] && read -r s < ${stamp}; echo "stamp=$s"`,
  ];
  if (w.restartOn.length) {
    // systemd prints the start time for people; date turns it into epoch seconds.
    lines.push(
      `if [ -z "$s" ]; then t=\${show#*ActiveEnterTimestamp=}; if [ "$t" != "$show" ]; then t=\${t%%$'\\n'*}; [ -n "$t" ] && echo "started=$(date -d "$t" +%s 2>/dev/null)"; fi; fi`,
    );
  }
  return { svc: lines.join('\n'), ...Object.fromEntries(w.restartOn.map((f, i) => [`svc@${i}`, fileRead(f)])) };
}

export function parseServiceProbe(probe: (id: string) => ProbeResult, w: ServiceWant): ServiceState {
  const r = probe('svc');
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(r.out)?.[1]?.trim() ?? '';
  const hashes = new Map<string, string>();
  const mtimes = new Map<string, number>();
  w.restartOn.forEach((f, i) => {
    const st = parseFileProbe(probe(`svc@${i}`));
    if (st.sha256) hashes.set(f, st.sha256);
    if (st.mtime !== undefined) mtimes.set(f, st.mtime);
  });
  const started = Number(get('started'));
  return {
    loaded: get('LoadState') === 'loaded',
    enabled: get('UnitFileState'),
    active: get('ActiveState'),
    needReload: get('NeedDaemonReload') === 'yes',
    stamp: get('stamp'),
    hashes,
    startedAt: Number.isFinite(started) && started > 0 ? started : undefined,
    mtimes,
  };
}

/**
 * The restart decision comes from state, not from "did this run change something": the stamp
 * written after each (re)start records the hashes of the trigger files it started with, so a run
 * that died between a config write and the restart still restarts on the next run.
 */
export function desiredStamp(w: ServiceWant, have: ServiceState, state: PlanState): string {
  const parts = w.restartOn.map((f) => `${f}=${state.files.get(f) ?? have.hashes.get(f) ?? 'absent'}`);
  return sha256(parts.join('\n'));
}

export function planService(w: ServiceWant, have: ServiceState, state: PlanState): Action[] {
  const actions: Action[] = [];
  const u = quote(w.unit);
  const unitChanged = w.unitFiles.some((f) => state.changedFiles.has(f));
  const enabling = w.enabled && have.enabled !== 'enabled';
  // `systemctl enable` reloads systemd itself once its links are made, which reads a new unit file too;
  // a reload costs the host about 0.2 s of CPU, so it is not done twice.
  if ((have.needReload || unitChanged || (!have.loaded && state.pending)) && !enabling) {
    actions.push({ kind: 'change', summary: 'systemctl daemon-reload', run: (c) => c.check('systemctl daemon-reload', 'daemon-reload').then(() => undefined) });
  }
  if (enabling) {
    actions.push({ kind: 'change', summary: `enable ${w.unit}`, run: (c) => c.check(`systemctl enable ${u}`, `enable ${w.unit}`).then(() => undefined) });
  } else if (!w.enabled && have.enabled === 'enabled') {
    actions.push({ kind: 'change', summary: `disable ${w.unit}`, run: (c) => c.check(`systemctl disable ${u}`, `disable ${w.unit}`).then(() => undefined) });
  }
  state.services.set(w.unit, w.state === 'stopped' ? 'stopped' : 'running');
  const stamp = desiredStamp(w, have, state);
  const writeStamp = `mkdir -p ${STAMP_DIR} && printf '%s\\n' ${stamp} > ${quote(`${STAMP_DIR}/${w.unit}`)}`;
  const running = have.active === 'active' || have.active === 'activating' || have.active === 'reloading';
  let verb: 'start' | 'restart' | 'stop' | undefined;
  let why = '';
  if (w.state === 'stopped') {
    if (running) verb = 'stop';
  } else if (w.state === 'restarted') {
    verb = 'restart';
    why = 'requested';
  } else if (!running) {
    verb = 'start';
  } else if (!have.stamp && !w.restartOn.some((f) => state.changedFiles.has(f)) && startedAfterFiles(w, have)) {
    // A service that is running, started after its files last changed, and that this run changes
    // nothing for is adopted as it is: hoist records what it runs with instead of restarting it (sshd,
    // say) just because it has no record yet.
    actions.push({
      kind: 'record',
      summary: `adopt running ${w.unit}: record the files it runs with`,
      run: (c) => c.check(writeStamp, `record ${w.unit}`).then(() => undefined),
    });
  } else if (have.stamp !== stamp) {
    verb = 'restart';
    why = have.stamp ? 'its files changed since it started' : 'its files are newer than its start, and hoist has no record of it';
  }
  if (verb) {
    // A failed unit that hit its start limit refuses to start until its failure is forgotten.
    const script =
      verb === 'stop'
        ? `systemctl stop ${u}`
        : `${have.active === 'failed' ? `systemctl reset-failed ${u} 2>/dev/null; ` : ''}systemctl ${verb} ${u} && ${writeStamp}`;
    actions.push({
      kind: 'change',
      summary: `${verb} ${w.unit}${why ? ` (${why})` : ''}`,
      // Restarting a running daemon interrupts its clients (kubelet, for containerd); starting one doesn't.
      ...(verb === 'restart' && running ? { disruptive: `restart of running ${w.unit}` } : {}),
      run: async (c) => {
        const r = await c.exec(script);
        if (r.code !== 0) {
          const st = await c.exec(`systemctl status --no-pager -n 15 ${u} 2>&1; journalctl -u ${u} -n 15 --no-pager 2>&1 | tail -15`);
          throw new HostError(`${verb} ${w.unit} failed: ${r.stderr.trim()}\n${st.stdout.trim()}`);
        }
      },
    });
  }
  if (!verb && w.state !== 'stopped' && have.active === 'activating') {
    // Still starting (another start, or the daemon's own restart): `systemctl start` joins that job
    // and returns once the unit is up, or fails with it.
    actions.push({
      kind: 'check',
      summary: `wait for ${w.unit} to finish starting`,
      run: async (c) => {
        const r = await c.exec(`systemctl start ${u}`, { timeoutMs: 300_000 });
        if (r.code !== 0) throw new HostError(`${w.unit} did not finish starting: ${r.stderr.trim()}`);
      },
    });
  }
  return actions;
}

/** Whether the running unit became active after every trigger file last changed (so it runs with them). */
function startedAfterFiles(w: ServiceWant, have: ServiceState): boolean {
  if (!w.restartOn.length) return true;
  if (have.startedAt === undefined) return false;
  return w.restartOn.every((f) => (have.mtimes.get(f) ?? 0) <= have.startedAt!);
}
