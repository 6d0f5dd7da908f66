/**
 * Runs a pod on one node the way kubelet would, through CRI, and prints each step's result:
 * RunPodSandbox (the configured sandbox image, the node's CNI network), CreateContainer and
 * StartContainer (busybox), the container's log, ExecSync inside it, the pod's CNI address, then
 * StopContainer, RemoveContainer, StopPodSandbox and RemovePodSandbox. Pods left by an earlier
 * interrupted run (label hoist-pod-smoke=1) are removed first.
 *
 *   npx tsx test/fleet/pod-smoke.ts h1                   (a host of the fleet, HOIST_FLEET_INSTANCE)
 *   npx tsx test/fleet/pod-smoke.ts root@10.231.1.2 -i KEY -o UserKnownHostsFile=FILE
 *
 * Options:
 *   --import      import the fleet's images over SSH with `ctr -n k8s.io images import` first: the
 *                 busybox image, and a busybox that sleeps, tagged as the configured sandbox image
 *                 (a stand-in for pause, for a node whose registries do not serve it)
 *   --cni         write a bridge + host-local + loopback conflist into /etc/cni/net.d if that
 *                 directory has none
 *   --restrict-oom set containerd's restrict_oom_score_adj = true in /etc/containerd/config.toml and
 *                 restart containerd, for a node that cannot lower oom_score_adj (see below)
 *   --image REF   container image (default the fleet's docker.io/hoist/busybox:1)
 *   --socket PATH CRI socket on the node (default /run/containerd/containerd.sock)
 *   other arguments are passed to ssh; the login must be able to open the socket (root).
 *
 * The node's CRI socket is forwarded over SSH to a local unix socket; the calls use runtime.v1
 * (containerd 1.5 and later). Exits 1 if a step fails, 2 if the node cannot be reached.
 *
 * containerd gives every pod sandbox oom_score_adj -998, and runc sets it before anything else; a
 * process may lower its oom_score_adj only with CAP_SYS_RESOURCE. Where the machine lacks it (this
 * fleet's controller runs in a VM whose capability bounding set has no CAP_SYS_RESOURCE, so no
 * host can get it), runc fails "can't get final child's PID from pipe: EOF" (its debug log:
 * "nsexec: failed to update /proc/self/oom_score_adj: Permission denied") unless containerd runs
 * with restrict_oom_score_adj = true. The "oom_score_adj" step checks this before RunPodSandbox.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGrpcFrame, GrpcFrameReader, grpcStatusName } from '../../src/modules/containerd/cri/grpc.js';
import { ProtoMessage, ProtoWriter } from '../../src/modules/containerd/cri/protobuf.js';
import { ensureOciImage } from './oci-image.js';
import { hostAddress, HOST_NAME_RE, IDENTITY_PATH, KNOWN_HOSTS_PATH } from './paths.js';
import { pauseLayout } from './registries.js';
import { $, sleep } from './sh.js';

const LABEL = 'hoist-pod-smoke';
const DEFAULT_IMAGE = 'docker.io/hoist/busybox:1';
const SMOKE_CONFLIST = '/etc/cni/net.d/10-hoist-smoke.conflist';
const CONFLIST = JSON.stringify(
  {
    cniVersion: '1.0.0',
    name: 'hoist-smoke',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'loopback' },
    ],
  },
  null,
  2,
);

// containerd's config: version 3 (2.x) keeps the setting in the CRI runtime plugin, version 2 in the CRI plugin.
const RESTRICT_OOM_SH = `set -e
f=/etc/containerd/config.toml
if grep -q '^version *= *3' "$f"; then sec=io.containerd.cri.v1.runtime; else sec=io.containerd.grpc.v1.cri; fi
if grep -q '^ *restrict_oom_score_adj' "$f"; then
  sed -i 's/^\\( *\\)restrict_oom_score_adj *=.*/\\1restrict_oom_score_adj = true/' "$f"
elif grep -q "^\\[plugins\\..$sec.\\]" "$f"; then
  sed -i "/^\\[plugins\\..$sec.\\]/a\\  restrict_oom_score_adj = true" "$f"
else
  printf '\\n[plugins."%s"]\\n  restrict_oom_score_adj = true\\n' "$sec" >> "$f"
fi
systemctl restart containerd`;

interface Options {
  target: string;
  sshArgs: string[];
  import: boolean;
  cni: boolean;
  restrictOom: boolean;
  image: string;
  socket: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    target: '',
    sshArgs: [],
    import: false,
    cni: false,
    restrictOom: false,
    image: DEFAULT_IMAGE,
    socket: '/run/containerd/containerd.sock',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--import') o.import = true;
    else if (a === '--cni') o.cni = true;
    else if (a === '--restrict-oom') o.restrictOom = true;
    else if (a === '--image') o.image = argv[++i];
    else if (a === '--socket') o.socket = argv[++i];
    else if (a.startsWith('-')) {
      o.sshArgs.push(a);
      if (/^-[iolpFJ]$/.test(a)) o.sshArgs.push(argv[++i]);
    } else if (!o.target) o.target = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!o.target) throw new Error('usage: pod-smoke.ts HOST|[user@]ADDRESS [--import] [--cni] [--restrict-oom] [--image REF] [ssh options]');
  const fleetHost = HOST_NAME_RE.exec(o.target);
  if (fleetHost) {
    // A fleet host by name: root, with the fleet's key and known_hosts.
    o.target = `root@${hostAddress(fleetHost[1] ? Number(fleetHost[1]) : 0)}`;
    o.sshArgs.push('-i', IDENTITY_PATH, '-o', `UserKnownHostsFile=${KNOWN_HOSTS_PATH}`, '-o', 'StrictHostKeyChecking=yes');
  }
  o.sshArgs.push('-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5');
  return o;
}

// --------------------------------------------------------------------------------------------
// CRI over a forwarded socket

class Cri {
  private session: http2.ClientHttp2Session;

  constructor(socketPath: string) {
    this.session = http2.connect('http://localhost', { createConnection: () => connect(socketPath) });
    this.session.on('error', () => {});
  }

  call(method: string, req: ProtoWriter, timeoutMs = 60_000): Promise<ProtoMessage> {
    const [service] = method.split('/');
    const path = `/runtime.v1.${service === 'Image' ? 'ImageService' : 'RuntimeService'}/${method.split('/')[1]}`;
    return new Promise((resolve, reject) => {
      const s = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${timeoutMs}m` });
      const reader = new GrpcFrameReader();
      const msgs: Buffer[] = [];
      let status: number | null = null;
      let message = '';
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = Number(h['grpc-status']);
          try {
            message = decodeURIComponent(String(h['grpc-message'] ?? ''));
          } catch {
            message = String(h['grpc-message'] ?? '');
          }
        }
      };
      const timer = setTimeout(() => {
        s.close(http2.constants.NGHTTP2_CANCEL);
        reject(new Error(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs + 2000);
      s.on('response', take);
      s.on('trailers', take);
      s.on('data', (c: Buffer) => msgs.push(...reader.push(c)));
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`${method}: ${e.message}`));
      });
      s.on('close', () => {
        clearTimeout(timer);
        if (status === 0) resolve(new ProtoMessage(msgs[0] ?? Buffer.alloc(0)));
        else reject(new Error(`${method}: ${status === null ? 'no grpc-status' : grpcStatusName(status)}: ${message}`));
      });
      s.end(encodeGrpcFrame(req.finish()));
    });
  }

  close(): void {
    this.session.close();
  }
}

const labels = (w: ProtoWriter, field: number) => w.stringMap(field, { [LABEL]: '1' });

function sandboxConfig(uid: string): ProtoWriter {
  const name = 'hoist-pod-smoke';
  return (
    labels(
      new ProtoWriter()
        .message(1, new ProtoWriter().string(1, name).string(2, uid).string(3, 'default'))
        .string(2, name)
        .string(3, `/var/log/pods/default_${name}_${uid}`),
      6,
    )
      // cgroup_parent as kubelet's systemd driver names it (a slice); containerd here uses SystemdCgroup.
      .message(8, new ProtoWriter().string(1, `kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice`))
  );
}

// --------------------------------------------------------------------------------------------

async function ssh(o: Options, cmd: string, input?: string): Promise<{ code: number; out: string }> {
  const r = await $({ input: input ?? '', nothrow: true })`ssh ${o.sshArgs} ${o.target} ${cmd}`;
  return { code: r.exitCode ?? 1, out: (r.stdout + r.stderr).trim() };
}

async function forward(o: Options): Promise<{ socket: string; proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'hoist-pod-smoke-'));
  const socket = join(dir, 'cri.sock');
  const proc = spawn('ssh', [...o.sshArgs, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${socket}:${o.socket}`, o.target], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100 && !existsSync(socket); i++) {
    if (proc.exitCode !== null) throw new Error(`ssh forwarding ${o.socket} exited with ${proc.exitCode}`);
    await sleep(100);
  }
  if (!existsSync(socket)) throw new Error(`ssh did not forward ${o.socket} within 10 s`);
  // Interrupted: end the forward too (the next run removes the pod left behind).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      proc.kill();
      rmSync(dir, { recursive: true, force: true });
      process.stdout.write(`interrupted (${sig})\n`);
      process.exit(130);
    });
  }
  return { socket, proc, dir };
}

let failures = 0;
async function step<T>(name: string, f: () => Promise<T>, show: (v: T) => string = (v) => String(v ?? '')): Promise<T | undefined> {
  const t0 = Date.now();
  try {
    const v = await f();
    process.stdout.write(`ok    ${name} (${Date.now() - t0} ms) ${show(v)}\n`);
    return v;
  } catch (e) {
    failures++;
    process.stdout.write(`FAIL  ${name} (${Date.now() - t0} ms) ${(e as Error).message}\n`);
    return undefined;
  }
}

async function importImages(o: Options, sandboxImage: string): Promise<void> {
  const { path: busybox } = await ensureOciImage();
  const load = async (archive: Buffer, what: string) => {
    const r = await $({ nothrow: true, input: archive })`ssh ${o.sshArgs} ${o.target} ${'ctr -n k8s.io images import --all-platforms -'}`;
    if (r.exitCode !== 0) throw new Error(`importing ${what}: ${(r.stdout + r.stderr).trim()}`);
  };
  await load(readFileSync(busybox), 'busybox');
  if (!sandboxImage) return;
  // The fleet's pause stand-in (busybox sleeping forever, as its registries serve hoist/pause:1),
  // tagged as the configured sandbox image.
  const tmp = mkdtempSync(join(tmpdir(), 'hoist-pause-'));
  try {
    await $`cp -r ${await pauseLayout(busybox)}/. ${tmp}`;
    const indexPath = join(tmp, 'index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    index.manifests[0].annotations = { 'io.containerd.image.name': sandboxImage };
    writeFileSync(indexPath, JSON.stringify(index));
    await load(execFileSync('tar', ['-C', tmp, '-cf', '-', '.'], { maxBuffer: 1 << 30 }), `pause stand-in as ${sandboxImage}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const fwd = await forward(o);
  let cri = new Cri(fwd.socket);
  try {
    const status = async () =>
      step(
        'Status',
        () => cri.call('Runtime/Status', new ProtoWriter().bool(1, true)),
        (m) =>
          m
            .message(1)
            ?.messages(1)
            .map((c) => `${c.string(1)}=${c.bool(2)}${c.string(4) ? ` (${c.string(4)})` : ''}`)
            .join(' ') ?? '',
      );
    const runtimeConfig = (m: ProtoMessage | undefined) => {
      try {
        return JSON.parse(m?.stringMap(2).config ?? '{}') as { sandboxImage?: string; pinnedImages?: { sandbox?: string }; restrictOOMScoreAdj?: boolean };
      } catch {
        return {};
      }
    };
    let cfg = runtimeConfig(await status());
    if (o.restrictOom && !cfg.restrictOOMScoreAdj) {
      await step('set restrict_oom_score_adj', async () => {
        const r = await ssh(o, 'sh -s', RESTRICT_OOM_SH);
        if (r.code !== 0) throw new Error(r.out);
        cri.close();
        cri = new Cri(fwd.socket);
        for (let i = 0; ; i++) {
          try {
            cfg = runtimeConfig(await cri.call('Runtime/Status', new ProtoWriter().bool(1, true), 2000));
            return `containerd restarted, restrictOOMScoreAdj=${cfg.restrictOOMScoreAdj}`;
          } catch (e) {
            if (i >= 50) throw e;
            cri.close();
            cri = new Cri(fwd.socket);
            await sleep(200);
          }
        }
      });
    }
    let sandboxImage = cfg.sandboxImage ?? cfg.pinnedImages?.sandbox ?? '';
    if (!sandboxImage) {
      // 2.x keeps it in the CRI images plugin, which Status does not report.
      const dump = await ssh(o, 'containerd config dump');
      sandboxImage = /^\s*(?:sandbox_image|sandbox)\s*=\s*["']([^"']+)["']/m.exec(dump.out)?.[1] ?? '';
    }
    process.stdout.write(`      sandbox image: ${sandboxImage || '(unknown)'}\n`);
    await step('oom_score_adj', async () => {
      const r = await ssh(o, `sh -c 'echo -998 > /proc/self/oom_score_adj' 2>/dev/null && echo can || echo cannot`);
      if (r.out === 'can') return 'the node can lower it to -998 (sandboxes get -998)';
      if (cfg.restrictOOMScoreAdj) return 'the node cannot lower it (no CAP_SYS_RESOURCE); containerd has restrict_oom_score_adj = true';
      throw new Error(
        'the node cannot lower oom_score_adj (no CAP_SYS_RESOURCE) and containerd has restrict_oom_score_adj = false: runc will fail "can\'t get final child\'s PID from pipe" (--restrict-oom sets it)',
      );
    });
    if (o.import) await step('import images', () => importImages(o, sandboxImage));
    if (o.cni) {
      await step('CNI config', async () => {
        const r = await ssh(
          o,
          `ls /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist /etc/cni/net.d/*.json 2>/dev/null | head -1 | grep . || { mkdir -p /etc/cni/net.d && cat > ${SMOKE_CONFLIST} && echo wrote ${SMOKE_CONFLIST}; }`,
          CONFLIST,
        );
        if (r.code !== 0) throw new Error(r.out);
        return r.out;
      });
    }
    for (const img of [sandboxImage, o.image].filter(Boolean)) {
      await step(`ImageStatus ${img}`, async () => {
        const m = await cri.call('Image/ImageStatus', new ProtoWriter().message(1, new ProtoWriter().string(1, img)));
        const id = m.message(1)?.string(1);
        if (!id) throw new Error('not present on the node (pull it, or --import for the fleet stand-ins)');
        return id;
      });
    }

    // Leftovers of an interrupted run.
    await step('clean leftovers', async () => {
      const list = await cri.call('Runtime/ListPodSandbox', new ProtoWriter().message(1, labels(new ProtoWriter(), 3)));
      const ids = list.messages(1).map((p) => p.string(1));
      for (const id of ids) {
        await cri.call('Runtime/StopPodSandbox', new ProtoWriter().string(1, id));
        await cri.call('Runtime/RemovePodSandbox', new ProtoWriter().string(1, id));
      }
      return `${ids.length} removed`;
    });

    const uid = randomUUID();
    const sbConfig = sandboxConfig(uid);
    const podId = await step('RunPodSandbox', async () => (await cri.call('Runtime/RunPodSandbox', new ProtoWriter().message(1, sbConfig), 120_000)).string(1));
    if (!podId) return;
    await step('PodSandboxStatus', async () => {
      const st = (await cri.call('Runtime/PodSandboxStatus', new ProtoWriter().string(1, podId))).message(1);
      const ip = st?.message(5)?.string(1) ?? '';
      if (!ip) throw new Error('sandbox has no IP address from CNI');
      return `state=${st?.uint64(3) === 0n ? 'READY' : 'NOTREADY'} ip=${ip}`;
    });
    const ctrConfig = labels(
      new ProtoWriter()
        .message(1, new ProtoWriter().string(1, 'smoke'))
        .message(2, new ProtoWriter().string(1, o.image))
        .string(3, '/bin/sh')
        .string(4, '-c')
        .string(4, 'echo "hoist pod smoke: $(hostname) $(ip -4 -o addr show dev eth0 | awk \'{print $4}\')"; exec sleep 3600'),
      9,
    ).string(11, 'smoke/0.log');
    const ctrId = await step('CreateContainer', async () =>
      (await cri.call('Runtime/CreateContainer', new ProtoWriter().string(1, podId).message(2, ctrConfig).message(3, sbConfig))).string(1),
    );
    if (ctrId) {
      await step(
        'StartContainer',
        () => cri.call('Runtime/StartContainer', new ProtoWriter().string(1, ctrId)),
        () => '',
      );
      await step('ContainerStatus', async () => {
        const st = (await cri.call('Runtime/ContainerStatus', new ProtoWriter().string(1, ctrId))).message(1);
        const state = ['CREATED', 'RUNNING', 'EXITED', 'UNKNOWN'][Number(st?.uint64(3) ?? 3n)];
        if (state !== 'RUNNING') throw new Error(`state ${state}, exit ${st?.uint64(7)}, ${st?.string(10)} ${st?.string(11)}`);
        return state;
      });
      await step('container log', async () => {
        for (let i = 0; i < 20; i++) {
          const r = await ssh(o, `cat /var/log/pods/default_hoist-pod-smoke_${uid}/smoke/0.log 2>/dev/null`);
          if (r.out) return r.out.split('\n')[0];
          await sleep(250);
        }
        throw new Error('nothing logged');
      });
      await step('ExecSync', async () => {
        const m = await cri.call(
          'Runtime/ExecSync',
          new ProtoWriter().string(1, ctrId).string(2, '/bin/sh').string(2, '-c').string(2, 'ip -4 -o addr show dev eth0; ip route | head -1').uint64(3, 10),
        );
        const out = `${m.fields.find((f) => f.field === 1)?.value.toString() ?? ''}${m.fields.find((f) => f.field === 2)?.value.toString() ?? ''}`.trim();
        const code = Number(m.uint64(3));
        if (code !== 0) throw new Error(`exit ${code}: ${out}`);
        return out.replace(/\s+/g, ' ');
      });
      await step(
        'StopContainer',
        () => cri.call('Runtime/StopContainer', new ProtoWriter().string(1, ctrId).uint64(2, 5)),
        () => '',
      );
      await step(
        'RemoveContainer',
        () => cri.call('Runtime/RemoveContainer', new ProtoWriter().string(1, ctrId)),
        () => '',
      );
    }
    await step(
      'StopPodSandbox',
      () => cri.call('Runtime/StopPodSandbox', new ProtoWriter().string(1, podId)),
      () => '',
    );
    await step(
      'RemovePodSandbox',
      () => cri.call('Runtime/RemovePodSandbox', new ProtoWriter().string(1, podId)),
      () => '',
    );
    await step('nothing left', async () => {
      const list = await cri.call('Runtime/ListPodSandbox', new ProtoWriter().message(1, labels(new ProtoWriter(), 3)));
      if (list.messages(1).length) throw new Error(`${list.messages(1).length} sandbox(es) still listed`);
      return '';
    });
  } finally {
    cri.close();
    fwd.proc.kill();
    rmSync(fwd.dir, { recursive: true, force: true });
    process.stdout.write(`${failures ? `${failures} step(s) failed` : 'pod smoke passed'} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
}

main().then(
  () => process.exit(failures ? 1 : 0),
  (e) => {
    process.stderr.write(`pod-smoke: ${(e as Error).message}\n`);
    process.exit(2);
  },
);
