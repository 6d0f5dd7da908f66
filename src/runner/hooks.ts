import { spawn } from 'node:child_process';
import type { Connection } from '../tasks/connection.js';
import type { Hook } from '../playbook/playbook.js';
import type { HostPlay } from './play.js';
import type { Logger } from '../util/log.js';
import { quote } from '../ssh/quote.js';
import { trackChild } from '../util/children.js';
import { interruption } from './interrupt.js';

/**
 * Runs a before_host/after_host hook (a `kubectl drain`, say) on the controller or on the host.
 * Returns an error message, or undefined when the hook succeeded.
 */
export async function runHook(h: Hook, conn: Connection, play: HostPlay, log: Logger, kind = 'hook'): Promise<string | undefined> {
  // The address hoist dialled in the end (HostName from ~/.ssh/config resolved), not an alias.
  const address = conn.endpoint.host;
  const env = { ...process.env, HOIST_HOST: play.host.name, HOIST_ADDRESS: address };
  if (h.on === 'host') {
    // The hook runs without the descriptor of hoist's commands.lock (fd 8): something it leaves running
    // in the background (`nohup x &`) must not hold the lock every later privileged command waits for.
    const r = await conn
      .exec(`export HOIST_HOST=${quote(play.host.name)} HOIST_ADDRESS=${quote(address)}\n{\n${h.run}\n} 8>&-`, { timeoutMs: h.timeout * 1000 })
      .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    log.log(play.host.name, `hook on host: ${h.run} → exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.code === 0 ? undefined : `"${h.run}" exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`;
  }
  return new Promise((resolve) => {
    // Its own process group: hoist's interrupt (or the timeout) stops the hook and whatever it started
    // (a `sleep`, a kubectl), which a signal sent to hoist alone would not reach.
    const child = spawn('bash', ['-c', h.run], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    trackChild(child, `${kind} "${h.run}" of ${play.host.name}`, { group: true, onInterrupt: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, h.timeout * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      log.log(play.host.name, `hook on controller: ${h.run} → ${code ?? signal}\n${out}`);
      if (code === 0) resolve(undefined);
      else if (signal && interruption.signal) resolve(`"${h.run}" was stopped by hoist's ${interruption.signal}`);
      else resolve(signal ? `"${h.run}" timed out after ${h.timeout} s` : `"${h.run}" exited ${code}: ${out.trim().split('\n').slice(-3).join(' ')}`);
    });
  });
}
