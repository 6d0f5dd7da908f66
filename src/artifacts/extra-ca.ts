import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.js';

/**
 * Node 20 reads NODE_EXTRA_CA_CERTS at start-up, before any script runs, and builds its whole root
 * store then: 60-90 ms of every command on a machine whose variable names the system's bundle (a
 * company network's usual setting). hoist needs the certificates only to download over https, so its
 * launcher (bin/hoist) hands the variable on under this name instead; hoist puts it back for every
 * process it starts and reads the file when it first sets up a download.
 */
export const DEFERRED_EXTRA_CA = 'HOIST_DEFERRED_EXTRA_CA_CERTS';

let deferred: string | undefined;
let loaded: string[] | undefined;

/** At start-up, before any process is started: NODE_EXTRA_CA_CERTS as the user set it, for them and for hoist. */
export function takeDeferredExtraCa(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[DEFERRED_EXTRA_CA];
  if (file === undefined) return;
  delete env[DEFERRED_EXTRA_CA];
  env.NODE_EXTRA_CA_CERTS = file;
  deferred = file || undefined;
  loaded = undefined;
}

/**
 * TLS options for downloads: when node did not load NODE_EXTRA_CA_CERTS itself, node's own roots
 * and the file's certificates (what node's default store would have held); otherwise none.
 * Node only warns about a file it cannot use; a download that then fails its certificate check says
 * less than this error does.
 */
export async function extraCaOptions(): Promise<{ ca?: string[] }> {
  if (deferred === undefined) return {};
  if (!loaded) {
    const where = `NODE_EXTRA_CA_CERTS=${deferred}`;
    let text: string;
    try {
      text = readFileSync(deferred, 'utf8');
    } catch (e) {
      throw new InputError(
        `${where}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); point it at a PEM file of CA certificates, or unset it`,
      );
    }
    const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (pems.length === 0) throw new InputError(`${where}: the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    pems.forEach((pem, i) => {
      try {
        new X509Certificate(pem);
      } catch (e) {
        throw new InputError(`${where}: certificate ${i + 1} of ${pems.length} is not valid: ${(e as Error).message}`);
      }
    });
    // node:tls only now: loading it costs every other command's start-up.
    const { rootCertificates } = await import('node:tls');
    loaded = [...rootCertificates, ...pems];
  }
  return { ca: loaded };
}
