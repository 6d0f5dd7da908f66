import { createReadStream, statSync, writeFileSync, renameSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** URL prefix → directory; the longest matching prefix wins. */
export interface Route {
  prefix: string;
  dir: string;
}

const TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.txt': 'text/plain; charset=utf-8',
  '.toml': 'text/plain; charset=utf-8',
};

function resolveFile(routes: Route[], urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const sorted = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
  for (const r of sorted) {
    const prefix = r.prefix.endsWith('/') ? r.prefix : `${r.prefix}/`;
    if (!(decoded + '/').startsWith(prefix) && decoded !== r.prefix) continue;
    const rel = decoded.slice(prefix.length - 1);
    const base = resolve(r.dir);
    const file = normalize(join(base, rel));
    if (file !== base && !file.startsWith(base + sep)) return undefined;
    return file;
  }
  return undefined;
}

type Range = { start: number; end: number } | 'unsatisfiable' | undefined;

/** A single `bytes=` range (what resuming downloaders send); multi-range requests get the whole file. */
export function parseRange(header: string | undefined, size: number): Range {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

function handle(routes: Route[], req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const url = new URL(req.url ?? '/', 'http://x');
  const file = resolveFile(routes, url.pathname);
  let st;
  try {
    st = file ? statSync(file) : undefined;
  } catch {
    st = undefined;
  }
  if (!file || !st || !st.isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
    'last-modified': st.mtime.toUTCString(),
    etag,
  };
  // If-Range: resume only if the file is still the one the client started downloading.
  const ifRange = req.headers['if-range'];
  const rangeAllowed = !ifRange || ifRange === etag || ifRange === headers['last-modified'];
  const range = rangeAllowed ? parseRange(req.headers.range, st.size) : undefined;
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${st.size}` }).end();
    return;
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : st.size - 1;
  headers['content-length'] = st.size === 0 ? 0 : end - start + 1;
  if (range) headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD' || st.size === 0) {
    res.end();
    return;
  }
  createReadStream(file, { start, end })
    .on('error', () => res.destroy())
    .pipe(res);
}

export function createStaticServer(routes: Route[]): Server {
  return createServer((req, res) => handle(routes, req, res));
}

function listen(server: Server, address: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', reject);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Serve `routes` on 127.0.0.1 (first, picking a free port) and then on each extra address with the
 * same port — never on a wildcard address.
 */
export async function listenOn(routes: Route[], addresses: string[]): Promise<{ port: number; servers: Server[] }> {
  const ordered = ['127.0.0.1', ...addresses.filter((a) => a !== '127.0.0.1')];
  const servers: Server[] = [];
  let port = 0;
  try {
    for (const a of ordered) {
      const s = createStaticServer(routes);
      port = await listen(s, a, port);
      servers.push(s);
    }
  } catch (e) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw e;
  }
  return { port, servers };
}

async function main(argv: string[]): Promise<void> {
  const routes: Route[] = [];
  const addresses: string[] = [];
  let portFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`missing value for ${a}`);
    if (a === '--route') {
      const eq = v.indexOf('=');
      routes.push({ prefix: v.slice(0, eq), dir: v.slice(eq + 1) });
    } else if (a === '--address') addresses.push(v);
    else if (a === '--port-file') portFile = v;
    else throw new Error(`unknown option ${a}`);
  }
  const { port } = await listenOn(routes, addresses);
  if (portFile) {
    writeFileSync(`${portFile}.tmp`, `${port}\n`);
    renameSync(`${portFile}.tmp`, portFile);
  }
  process.stdout.write(`serving on port ${port}: ${['127.0.0.1', ...addresses].join(', ')}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
