import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';

/**
 * A forward proxy that logs every request it carries (absolute-form requests for http:// URLs, CONNECT
 * tunnels for https://); with `tls` (a key and certificate), an https proxy.
 */
export async function loggingProxy(
  address = '127.0.0.1',
  tls?: { key: Buffer; cert: Buffer },
): Promise<{ url: string; log: string[]; auth: (string | undefined)[]; close: () => Promise<void> }> {
  const log: string[] = [];
  const auth: (string | undefined)[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    log.push(`${req.method} ${req.url}`);
    auth.push(req.headers['proxy-authorization']);
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const proxy = tls ? https.createServer(tls, handler) : http.createServer(handler);
  proxy.on('connect', (req: http.IncomingMessage, client: import('node:stream').Duplex, head: Buffer) => {
    log.push(`CONNECT ${req.url}`);
    auth.push(req.headers['proxy-authorization']);
    const [host, port] = (req.url ?? '').split(':');
    const up = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client).pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, address, resolve));
  return {
    url: `${tls ? 'https' : 'http'}://${address}:${(proxy.address() as AddressInfo).port}`,
    log,
    auth,
    close: async () => {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
