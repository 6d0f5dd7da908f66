import { quote } from './quote.js';
import type { Duplex } from 'node:stream';
import { HostError } from '../util/errors.js';
import { printable } from '../util/printable.js';
import type { HostSession } from './session.js';

/*
 * A stdio ⇄ unix-socket bridge, for reaching a root-only socket (containerd's) as a user who gets
 * root through sudo: OpenSSH's stream-local forwarding opens the socket as the login user, who may not.
 * No package is installed for it; the first interpreter the host already has is used:
 * - perl: perl-base is Essential on Debian and Ubuntu, so every such host has it (the bridge uses only its built-ins);
 * - python3: part of every RHEL/Fedora-family minimal install (dnf runs on it);
 * - socat, then nc with -U, where an operator installed them.
 */

// Core built-ins only, no module: loading Socket or IO::Socket costs 20-25 ms of CPU, more than the
// rest of the bridge, on every host of every run. The numbers are Linux's AF_UNIX and SOCK_STREAM
// on amd64 and arm64, the architectures hoist installs for, and a sockaddr_un is the family
// followed by the path.
const PERL = `use strict;
socket(my $s, 1, 1, 0) or die "socket: $!\\n";
connect($s, pack('S', 1) . $ARGV[0]) or die "cannot connect to $ARGV[0]: $!\\n";
binmode STDIN; binmode STDOUT; binmode $s;
my $sock = fileno($s);
my %open = (fileno(STDIN) => \\*STDIN, $sock => $s);
while (%open) {
  my $rin = ''; vec($rin, $_, 1) = 1 for keys %open;
  my $n = select(my $rout = $rin, undef, undef, undef);
  if ($n < 0) { next if $! == 4; die "select: $!\\n" }  # 4: EINTR
  for my $fd (keys %open) {
    next unless vec($rout, $fd, 1);
    my $got = sysread($open{$fd}, my $buf, 65536);
    die "read: $!\\n" unless defined $got;
    if ($got == 0) { exit 0 if $fd == $sock; delete $open{$fd}; shutdown($s, 1); next }
    my $out = $fd == $sock ? \\*STDOUT : $s;
    for (my $off = 0; $off < $got;) { my $w = syswrite($out, $buf, $got - $off, $off); die "write: $!\\n" unless defined $w; $off += $w }
  }
}`;

const PYTHON = `import os, select, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
i, o = sys.stdin.fileno(), sys.stdout.fileno()
watch = [i, s]
while watch:
    for f in select.select(watch, [], [])[0]:
        d = s.recv(65536) if f is s else os.read(i, 65536)
        if not d:
            if f is s: sys.exit(0)
            watch.remove(i); s.shutdown(socket.SHUT_WR); continue
        if f is s:
            while d: d = d[os.write(o, d):]
        else: s.sendall(d)`;

/** Event a stream from HostConnection.openUnixStream() emits with the reason when its bridge failed on the host. */
export const TRANSPORT_FAILURE = 'hoist:transport-failure';

export type BridgeTool = 'perl' | 'python3' | 'socat' | 'nc';

/** A bash command line that connects its stdio to `socketPath` with the first tool the host has (or `only`). */
export function unixBridgeCommand(socketPath: string, only?: BridgeTool): string {
  const sock = quote(socketPath);
  const tries: Record<BridgeTool, string> = {
    perl: `if command -v perl >/dev/null 2>&1; then exec perl -e ${quote(PERL)} ${sock}; fi`,
    python3: `if command -v python3 >/dev/null 2>&1; then exec python3 -c ${quote(PYTHON)} ${sock}; fi`,
    socat: `if command -v socat >/dev/null 2>&1; then exec socat STDIO UNIX-CONNECT:${sock}; fi`,
    nc: `if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -- '-U'; then exec nc -U ${sock}; fi`,
  };
  const order: BridgeTool[] = only ? [only] : ['perl', 'python3', 'socat', 'nc'];
  return [
    `[ -S ${sock} ] || { echo "no socket at "${sock} >&2; exit 2; }`,
    ...order.map((t) => tries[t]),
    `echo "no program to reach "${sock}" with: none of ${order.join(', ')} is installed on the host; install ${only ?? 'perl or python3'} (hoist talks to the socket through it, under sudo)" >&2; exit 127`,
  ].join('\n');
}

/**
 * A byte stream to a unix socket on the host, e.g. containerd's gRPC socket. A root login uses
 * OpenSSH's stream-local forwarding; under become, sshd would open the socket as the login user, so a
 * bridge runs through sudo instead (unixBridgeCommand). Each call is a new connection to the socket.
 */
export async function openUnixStream(s: HostSession, socketPath: string): Promise<Duplex> {
  if (!s.becomes) {
    return s.guard(
      new Promise<Duplex>((resolve, reject) =>
        s.link.client.openssh_forwardOutStreamLocal(socketPath, (err, ch) =>
          err ? reject(new HostError(`${s.endpoint.name}: cannot open ${socketPath} over SSH: ${err.message}`)) : resolve(ch),
        ),
      ),
      `opening ${socketPath}`,
    );
  }
  let stderr = '';
  const { ch, exit } = await s.open(`bash -c ${quote(unixBridgeCommand(socketPath))}`, true, (d) => {
    if (stderr.length < 2048) stderr += d.toString();
  });
  // The bridge's own complaint (no socket, no tool) is the useful error when the stream ends early.
  exit.onExit((code) => {
    if (!code) return;
    const err = new HostError(`${s.endpoint.name}: cannot open ${socketPath}: ${printable(stderr.trim()) || `bridge exited with ${code}`}`);
    // Announced apart from destroy(): the stream's user may have closed it already on the end of data.
    ch.emit(TRANSPORT_FAILURE, err);
    (ch as unknown as Duplex).destroy(err);
  });
  return ch;
}
