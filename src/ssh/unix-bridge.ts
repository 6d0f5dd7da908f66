import { quote } from './quote.js';

/*
 * A stdio ⇄ unix-socket bridge, for reaching a root-only socket (containerd's) as a user who gets
 * root through sudo: OpenSSH's stream-local forwarding opens the socket as the login user, who may not.
 * No package is installed for it; the first interpreter the host already has is used:
 * - perl: perl-base is Essential on Debian and Ubuntu, so every such host has it, with IO::Socket::UNIX;
 * - python3: part of every RHEL/Fedora-family minimal install (dnf runs on it);
 * - socat, then nc with -U, where an operator installed them.
 */

// The modules are required in BEGIN and a missing one exits 99, so that the one perl start both checks
// and bridges: a separate check would cost another interpreter start on every host of every run.
const PERL = `use strict; use Socket; BEGIN { eval { require IO::Socket::UNIX; require IO::Select; 1 } or exit 99 }
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $ARGV[0]) or die "cannot connect to $ARGV[0]: $!\\n";
binmode STDIN; binmode STDOUT; binmode $s;
my $sel = IO::Select->new(\\*STDIN, $s);
while ($sel->count) {
  for my $in ($sel->can_read) {
    my $n = sysread($in, my $buf, 65536);
    die "read: $!\\n" unless defined $n;
    if ($n == 0) { exit 0 if $in == $s; $sel->remove($in); shutdown($s, 1); next }
    my $out = $in == $s ? \\*STDOUT : $s;
    for (my $off = 0; $off < $n;) { my $w = syswrite($out, $buf, $n - $off, $off); die "write: $!\\n" unless defined $w; $off += $w }
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

export type BridgeTool = 'perl' | 'python3' | 'socat' | 'nc';

/** A bash command line that connects its stdio to `socketPath` with the first tool the host has (or `only`). */
export function unixBridgeCommand(socketPath: string, only?: BridgeTool): string {
  const sock = quote(socketPath);
  const tries: Record<BridgeTool, string> = {
    perl: `if command -v perl >/dev/null 2>&1; then perl -e ${quote(PERL)} ${sock}; rc=$?; [ $rc = 99 ] || exit $rc; fi`,
    python3: `if command -v python3 >/dev/null 2>&1; then exec python3 -c ${quote(PYTHON)} ${sock}; fi`,
    socat: `if command -v socat >/dev/null 2>&1; then exec socat STDIO UNIX-CONNECT:${sock}; fi`,
    nc: `if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -- '-U'; then exec nc -U ${sock}; fi`,
  };
  const order: BridgeTool[] = only ? [only] : ['perl', 'python3', 'socat', 'nc'];
  return [
    `[ -S ${sock} ] || { echo "no socket at "${sock} >&2; exit 2; }`,
    ...order.map((t) => tries[t]),
    `echo "no tool to bridge to "${sock}" (tried ${order.join(', ')})" >&2; exit 127`,
  ].join('\n');
}
