import { HostError } from '../util/errors.js';
import { quote } from './quote.js';
import { tempBesideTarget } from './upload.js';
import { printable } from '../util/printable.js';
import type { HostSession } from './session.js';

/*
 * Host-to-host copy of a file one host already holds, so the controller doesn't send every host the
 * same tens of megabytes. The holder serves the file once on an ephemeral TCP port to whoever
 * presents a one-time token; the receiver connects with bash's own /dev/tcp, checks size and sha256,
 * and moves the file into place. Nothing is installed on either host:
 * - the server is perl (perl-base, with IO::Socket::IP, is Essential on Debian and Ubuntu) or
 *   python3 (every RHEL/Fedora-family minimal install);
 * - the token travels on stdin and in the environment, never in a process's arguments;
 * - the server ends when its one transfer is done, when the controller's channel closes (stdin at EOF)
 *   or after SERVE_LIMIT_S, whichever comes first.
 */

/** How long a server waits for its receiver in all, and how long an accepted connection may take to say the token. */
const SERVE_LIMIT_S = 900;
const TOKEN_WAIT_S = 5;

// As in unix-bridge.ts: a missing module exits 99 from BEGIN, and the next interpreter is tried.
const PERL = `use strict; BEGIN { eval { require IO::Socket::IP; require IO::Select; 1 } or exit 99 }
$SIG{ALRM} = sub { exit 3 }; alarm ${SERVE_LIMIT_S};
open(my $f, '<', $ARGV[0]) or die "cannot read $ARGV[0]: $!\\n"; binmode $f;
my $token = <STDIN>; exit 1 unless defined $token; chomp $token;
my %o = (Listen => 8, LocalPort => 0, ReuseAddr => 1);
my $l = IO::Socket::IP->new(%o, LocalHost => '::', V6Only => 0) || IO::Socket::IP->new(%o, LocalHost => '0.0.0.0') or die "cannot listen: $@\\n";
$| = 1; print "port ", $l->sockport, "\\n";
my $sel = IO::Select->new($l, \\*STDIN);
while (1) {
  for my $r ($sel->can_read) {
    if ($r != $l) { my $n = sysread(STDIN, my $x, 64); exit 0 unless $n; next }
    my $c = $l->accept or next;
    my ($line, $cs) = ('', IO::Select->new($c));
    while (length($line) < 256 && $line !~ /\\n/ && $cs->can_read(${TOKEN_WAIT_S})) { last unless sysread($c, $line, 256 - length($line), length($line)) }
    if ($line ne "$token\\n") { close $c; next }
    binmode $c; seek($f, 0, 0);
    while (my $n = sysread($f, my $buf, 262144)) { for (my $o = 0; $o < $n;) { my $w = syswrite($c, $buf, $n - $o, $o); die "send: $!\\n" unless defined $w; $o += $w } }
    close $c or die "send: $!\\n"; print "sent\\n"; exit 0;
  }
}`;

const PYTHON = `import os, select, signal, socket, sys
signal.alarm(${SERVE_LIMIT_S})
f = open(sys.argv[1], 'rb')
token = sys.stdin.buffer.readline().rstrip(b'\\n')
if not token: sys.exit(1)
try:
    l = socket.create_server(('', 0), family=socket.AF_INET6, dualstack_ipv6=True, backlog=8)
except (OSError, ValueError):
    l = socket.create_server(('0.0.0.0', 0), backlog=8)
print('port', l.getsockname()[1], flush=True)
while True:
    for r in select.select([l, sys.stdin], [], [])[0]:
        if r is sys.stdin:
            if not os.read(0, 64): sys.exit(0)
            continue
        c, _ = l.accept()
        c.settimeout(${TOKEN_WAIT_S})
        line = b''
        try:
            while len(line) < 256 and not line.endswith(b'\\n'):
                d = c.recv(256 - len(line))
                if not d: break
                line += d
        except OSError:
            pass
        if line != token + b'\\n':
            c.close(); continue
        c.settimeout(None); f.seek(0); c.sendfile(f); c.close()
        print('sent', flush=True); sys.exit(0)`;

export type ServeTool = 'perl' | 'python3';

/**
 * A bash command line that serves `file` once (see above): it reads the token as the first line of its
 * stdin, prints `port N` once it listens, then `sent` after the transfer. Exit 4: the file isn't
 * readable here; 127: no interpreter to serve with.
 */
export function serveCommand(file: string, only?: ServeTool): string {
  const f = quote(file);
  const tries: Record<ServeTool, string> = {
    perl: `if command -v perl >/dev/null 2>&1; then perl -e ${quote(PERL)} ${f}; rc=$?; [ $rc = 99 ] || exit $rc; fi`,
    python3: `if command -v python3 >/dev/null 2>&1; then exec python3 -c ${quote(PYTHON)} ${f}; fi`,
  };
  const order: ServeTool[] = only ? [only] : ['perl', 'python3'];
  return [
    `[ -r ${f} ] || { echo "cannot read "${f}" as $(id -un)" >&2; exit 4; }`,
    ...order.map((t) => tries[t]),
    `echo "no tool to serve a file with (tried ${order.join(', ')})" >&2; exit 127`,
  ].join('\n');
}

/** Why a receive failed, by its exit code: which side to blame decides whether the holder is used again. */
export const RECEIVE_EXIT = { unreachable: 20, short: 21, checksum: 22 } as const;

export interface PeerSource {
  address: string;
  port: number;
}

/**
 * A bash script that fetches a served file from `from` into a journalled temporary file beside
 * `remotePath`, checks its size and sha256, and moves it into place (mode 0644, root's when
 * privileged). It reads the token as the first line of its stdin.
 */
export function receiveScript(
  from: PeerSource,
  remotePath: string,
  want: { size: number; sha256: string },
  ctx: { privileged: boolean; timeoutS: number },
): string {
  const addr = quote(from.address);
  const where = `${from.address}:${from.port}`;
  const dest = quote(remotePath);
  return [
    'set -e',
    'IFS= read -r T',
    ...tempBesideTarget(remotePath, ctx),
    // A filtered port would otherwise hang for the kernel's connect timeout (minutes): try quickly first.
    `if ! timeout ${TOKEN_WAIT_S} bash -c 'exec 3<>/dev/tcp/"$1"/"$2"' _ ${addr} ${from.port} 2>/dev/null; then echo ${quote(`cannot connect to ${where}`)} >&2; exit ${RECEIVE_EXIT.unreachable}; fi`,
    `export T; timeout ${ctx.timeoutS} bash -c 'exec 3<>/dev/tcp/"$1"/"$2" && printf "%s\\n" "$T" >&3 && exec cat <&3' _ ${addr} ${from.port} > "$tmp" || true`,
    `got=$(stat -c %s "$tmp"); if [ "$got" != ${want.size} ]; then echo "received $got of ${want.size} bytes from "${quote(where)} >&2; exit ${RECEIVE_EXIT.short}; fi`,
    `sum=$(sha256sum < "$tmp"); sum=\${sum%% *}; if [ "$sum" != ${quote(want.sha256)} ]; then echo "checksum mismatch for what "${quote(where)}" sent: expected "${quote(want.sha256)}", got $sum" >&2; exit ${RECEIVE_EXIT.checksum}; fi`,
    ctx.privileged ? `chown root:root "$tmp"` : '',
    `chmod 0644 "$tmp"`,
    `mv -f "$tmp" ${dest}`,
    'trap - EXIT',
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * A host-to-host copy that failed, with whom to blame: the `source` (it could not serve, or sent
 * short or wrong bytes: don't use it again), the `route` between the two hosts (the receiver can't
 * reach it: hosts may not see each other at all), or the `receiver` itself.
 */
export class PeerCopyError extends HostError {
  constructor(
    message: string,
    readonly blame: 'source' | 'route' | 'receiver',
    /**
     * Whether the blame is certain: wrong bytes, or a server that could not start, are the
     * source's; a short copy may be the receiver's own doing (a full disk) as well.
     */
    readonly certain = true,
  ) {
    super(message);
  }
}

/** A file being served once to a peer (see serveFile). */
export interface Serving {
  port: number;
  /** Settles when the server has sent the file, or failed or stopped without sending it. */
  sent: Promise<void>;
  /** Ends the server (it also ends by itself once it has sent the file). */
  stop(): void;
}

/**
 * Serves `file` once, on an ephemeral TCP port of this host, to whoever presents `token` (see
 * peer-copy.ts). It runs as the login user without sudo: what it serves is a release file hoist
 * staged world-readable, and a command outside sudo holds no commands.lock, so serving never waits
 * for this host's own work nor holds it up.
 */
export async function serveFile(s: HostSession, file: string, token: string): Promise<Serving> {
  let stderr = '';
  const t0 = Date.now();
  const { ch, exit } = await s.open(`bash -c ${quote(serveCommand(file))}`, false, (d) => {
    if (stderr.length < 2048) stderr += d.toString();
  });
  let out = '';
  let sentOk = false;
  const failed = () =>
    new PeerCopyError(`${s.endpoint.name} could not serve ${file}: ${printable(stderr.trim()) || `exit ${exit.code ?? 'unknown'}`}`, 'source');
  const listening = new Promise<number>((resolve, reject) => {
    ch.on('data', (d: Buffer) => {
      out += d.toString();
      const port = /^port (\d+)$/m.exec(out);
      if (port) resolve(Number(port[1]));
      if (/^sent$/m.test(out)) sentOk = true;
    });
    ch.on('close', () => reject(failed()));
  });
  // One line when it ends, like an upload's: it runs beside this host's own commands.
  const sent = new Promise<void>((resolve, reject) =>
    ch.on('close', () => {
      s.trace(1, `serve ${file} to a peer: ${sentOk ? 'sent' : 'not sent'}, exit ${exit.code ?? 'unknown'} in ${Date.now() - t0} ms`);
      if (sentOk) resolve();
      else reject(failed());
    }),
  );
  sent.catch(() => undefined);
  ch.write(`${token}\n`);
  const port = await s.guard(listening, 'starting a file server');
  // Awaited only when the receiver succeeded: a copy that failed at the receiver leaves it unread.
  const guarded = s.guard(sent, 'serving a file');
  guarded.catch(() => undefined);
  return { port, sent: guarded, stop: () => void ch.end() };
}

/**
 * Fetches a file another host serves (serveFile there) into `remotePath`, checking its size and
 * sha256 before it replaces anything. Failures are PeerCopyErrors that say whose fault they were.
 */
export async function receiveFile(s: HostSession, from: PeerSource, token: string, remotePath: string, want: { size: number; sha256: string }): Promise<void> {
  const elevate = s.becomes;
  const privileged = s.runsAsRoot(elevate);
  const timeoutS = Math.max(s.endpoint.commandTimeoutMs, 600_000) / 1000;
  const script = receiveScript(from, remotePath, want, { privileged, timeoutS });
  const t0 = Date.now();
  const r = await s.runChannel(`bash -c ${quote(s.serialized(script, privileged))}`, `${token}\n`, elevate, (timeoutS + 30) * 1000);
  s.trace(1, `receive ${remotePath} (${want.size} bytes) from ${from.address}:${from.port}: exit ${r.code} in ${Date.now() - t0} ms`);
  if (r.code === 0) return;
  const why = printable(r.stderr.trim().split('\n').slice(-3).join('\n')).replace(/\\n/g, '\n') || `exit ${r.code}`;
  const blame = r.code === RECEIVE_EXIT.unreachable ? 'route' : r.code === RECEIVE_EXIT.short || r.code === RECEIVE_EXIT.checksum ? 'source' : 'receiver';
  throw new PeerCopyError(`${s.endpoint.name} could not fetch ${remotePath} from ${from.address}: ${why}`, blame, r.code !== RECEIVE_EXIT.short);
}
