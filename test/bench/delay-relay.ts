/**
 * A wide-area network in userspace (this machine's kernel has no netem): one TCP relay per host on
 * 127.0.0.1, each byte held `oneWayMs` in each direction before it is passed on, order kept. hoist
 * and the OpenSSH floor dial the same relays, so both pay the same latency. Each connection also
 * counts its round trips: a turn from client-to-server traffic to server-to-client traffic is one.
 */
import net from 'node:net';

export interface Relay {
  /** Port on 127.0.0.1 that reaches each host's sshd, by host name. */
  ports: Map<string, number>;
  /** Round trips of every connection closed so far, by host name. */
  roundTrips: Map<string, number[]>;
  /**
   * Per connection closed so far, by host name: when each burst of traffic began (ms after the
   * connection was accepted), its direction and its bytes; a burst is traffic in one direction until
   * the other speaks. Shows which step of a run each round trip belongs to.
   */
  bursts: Map<string, Burst[][]>;
  /** Forget what was counted (between measured runs). */
  reset(): void;
  close(): Promise<void>;
}

export interface Burst {
  atMs: number;
  dir: 'up' | 'down';
  bytes: number;
}

/** Passes chunks on `delay` ms after they arrived, in arrival order. */
function delayed(from: net.Socket, to: net.Socket, delay: number, onData: (bytes: number) => void): void {
  const queue: { at: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length && queue[0].at <= now) to.write(queue.shift()!.chunk);
    if (queue.length) timer = setTimeout(flush, queue[0].at - now);
    else if (ended) to.end();
  };
  let ended = false;
  from.on('data', (chunk: Buffer) => {
    onData(chunk.length);
    queue.push({ at: Date.now() + delay, chunk });
    timer ??= setTimeout(flush, delay);
  });
  from.on('end', () => {
    ended = true;
    if (!queue.length && !timer) to.end();
  });
}

export async function startRelays(hosts: { name: string; address: string; port?: number }[], oneWayMs: number): Promise<Relay> {
  const ports = new Map<string, number>();
  const roundTrips = new Map<string, number[]>();
  const bursts = new Map<string, Burst[][]>();
  const servers: net.Server[] = [];
  for (const h of hosts) {
    const server = net.createServer((client) => {
      const upstream = net.connect(h.port ?? 22, h.address);
      let last: 'up' | 'down' | undefined;
      let turns = 0;
      const t0 = Date.now();
      const mine: Burst[] = [];
      const saw = (dir: 'up' | 'down', bytes: number) => {
        if (last === 'up' && dir === 'down') turns++;
        if (last !== dir) mine.push({ atMs: Date.now() - t0, dir, bytes: 0 });
        mine[mine.length - 1].bytes += bytes;
        last = dir;
      };
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      delayed(client, upstream, oneWayMs, (n) => saw('up', n));
      delayed(upstream, client, oneWayMs, (n) => saw('down', n));
      const done = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', done);
      upstream.on('error', done);
      let closed = 0;
      const count = () => {
        if (++closed !== 2) return;
        roundTrips.set(h.name, [...(roundTrips.get(h.name) ?? []), turns]);
        bursts.set(h.name, [...(bursts.get(h.name) ?? []), mine]);
      };
      client.on('close', count);
      upstream.on('close', count);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports.set(h.name, (server.address() as net.AddressInfo).port);
    servers.push(server);
  }
  return {
    ports,
    roundTrips,
    bursts,
    reset: () => {
      roundTrips.clear();
      bursts.clear();
    },
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
