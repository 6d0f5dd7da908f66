import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContext } from 'node:tls';

/**
 * Node 20 reads NODE_EXTRA_CA_CERTS at start-up, before any script runs, and builds its whole root
 * store then: 60-90 ms of every command on a machine whose variable names the system's bundle (a
 * company network's usual setting). hoist needs the certificates only to download over https, so its
 * launcher (bin/hoist) hands the variable on under this name instead; hoist puts it back for every
 * process it starts and reads the file when it first sets up a download.
 */
export const DEFERRED_EXTRA_CA = 'HOIST_DEFERRED_EXTRA_CA_CERTS';

let deferred: string | undefined;
let built: Promise<ExtraCa> | undefined;

export interface ExtraCa {
  /** Node's default store plus the file's certificates; none when node loaded the file itself. */
  secureContext?: SecureContext;
  /** Why the file, or part of it, was not used: like node, hoist goes on without it, and says so when a certificate check fails. */
  problem?: string;
}

/** At start-up, before any process is started: NODE_EXTRA_CA_CERTS as the user set it, for them and for hoist. */
export function takeDeferredExtraCa(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[DEFERRED_EXTRA_CA];
  if (file === undefined) return;
  delete env[DEFERRED_EXTRA_CA];
  env.NODE_EXTRA_CA_CERTS = file;
  deferred = file || undefined;
  built = undefined;
}

/**
 * The TLS context for downloads, built once: a context on node's own default store (its bundled
 * roots, or the system's under --use-openssl-ca and in builds that use it by default) with the
 * deferred file's certificates added, which is what node's default store would have held. Building
 * it costs what node would have spent at start-up; a single context serves every connection.
 */
export function extraCa(): Promise<ExtraCa> {
  if (deferred === undefined) return Promise.resolve({});
  return (built ??= load(deferred));
}

async function load(file: string): Promise<ExtraCa> {
  const where = `NODE_EXTRA_CA_CERTS=${file}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { problem: `${where} was not used: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  // The two labels node's reader of this file accepts for a certificate.
  const found = text.match(/-----BEGIN (?:X509 )?CERTIFICATE-----[\s\S]*?-----END (?:X509 )?CERTIFICATE-----/g) ?? [];
  if (found.length === 0) return { problem: `${where} was not used: the file holds no PEM certificate` };
  // As node reads the file: every certificate up to the first it cannot parse.
  const pems: string[] = [];
  let problem: string | undefined;
  for (const [i, pem] of found.entries()) {
    try {
      new X509Certificate(pem.replace(/X509 CERTIFICATE/g, 'CERTIFICATE'));
      pems.push(pem);
    } catch (e) {
      problem = `${where}: certificate ${i + 1} of ${found.length} is not valid (${(e as Error).message}); ${i === 0 ? 'none was used' : `only the ${i} before it ${i === 1 ? 'was' : 'were'} used`}`;
      break;
    }
  }
  if (pems.length === 0) return { problem };
  // node:tls only now: loading it costs every other command's start-up.
  const tls = await import('node:tls');
  const secureContext = tls.createSecureContext();
  // addCACert copies the shared default store before adding to it (node's own way of adding a CA).
  const native = (secureContext as SecureContext & { context?: { addCACert?: (pem: string) => void } }).context;
  if (typeof native?.addCACert === 'function') for (const pem of pems) native.addCACert(pem);
  else return { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, ...pems] }), problem };
  return { secureContext, problem };
}
