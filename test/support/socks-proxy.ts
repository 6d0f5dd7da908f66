import net, { type AddressInfo } from 'node:net';

/** A SOCKS5 proxy (no authentication, CONNECT to an IPv4 address or a name) that logs the first byte of each greeting: 5 for SOCKS. */
export async function socksProxy(): Promise<{ url: string; greetings: number[]; close: () => Promise<void> }> {
  const greetings: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
    c.on('error', () => c.destroy());
    c.once('data', (hello) => {
      greetings.push(hello[0]);
      if (hello[0] !== 5) return c.destroy();
      c.write(Buffer.from([5, 0]));
      c.once('data', (req) => {
        const [host, at] = req[3] === 1 ? [[...req.subarray(4, 8)].join('.'), 8] : [req.subarray(5, 5 + req[4]).toString(), 5 + req[4]];
        const up = net.connect(req.readUInt16BE(at), host, () => {
          c.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
          c.pipe(up).pipe(c);
        });
        up.on('error', () => c.destroy());
        c.on('close', () => up.destroy());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `socks5://127.0.0.1:${(server.address() as AddressInfo).port}`,
    greetings,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
