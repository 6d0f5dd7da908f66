import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ssh2, { type AnyAuthMethod, type ParsedKey, type SignCallback, type SigningRequestOptions, type IdentityCallback } from 'ssh2';
import { InputError, InputErrors, NoInputError } from '../util/errors.js';
import { addSecret } from '../util/redact.js';
import { describeSecretRef, resolveSecretRef, type LocatedSecretRef } from '../util/secret-ref.js';
import type { BecomeSpec } from './become.js';
import type { Endpoint } from './endpoint.js';
import { openSshPublicBlob } from './key-file.js';

// ssh2 is CommonJS: its classes are reachable through the default export only.
const { BaseAgent, OpenSSHAgent, utils } = ssh2;

/** Where secrets come from when they are not in a file: the environment, or the operator at a terminal. */
export interface SecretSources {
  /** The passphrase of an encrypted identity file, or undefined when none can be had. */
  passphrase(file: string): Promise<{ value: string; source: string } | undefined>;
  /** The sudo password given for the whole run (-K or HOIST_BECOME_PASSWORD). */
  becomePassword(): Promise<{ value: string; source: string } | undefined>;
}

interface FileKey {
  file: string;
  /** Public blob, when it could be read without decrypting (from the .pub file or the key's header). */
  publicBlob?: Buffer;
  /** Decrypted key, when it is used directly rather than through the agent. */
  key?: ParsedKey;
}

const DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk'];

/**
 * Everything a connection needs to log in and to become root, resolved once before any host is
 * contacted: a wrong passphrase, a missing key or a world-readable password file is bad input, reported
 * for every host at once instead of as a failure per host halfway through a run.
 */
export class Credentials {
  private constructor(
    private readonly agentSocket: string | undefined,
    private readonly agentKeys: ParsedKey[],
    private readonly files: Map<string, FileKey>,
    private readonly become: Map<string, BecomeSpec>,
  ) {}

  static async prepare(endpoints: Endpoint[], given: SecretSources): Promise<Credentials> {
    const all = endpoints.flatMap(chain);
    const sources = withInventoryPassphrases(all, given);
    const agentSocket = process.env.SSH_AUTH_SOCK || undefined;
    const agentKeys = agentSocket ? await agentIdentities(agentSocket) : [];
    const errors: InputError[] = [];
    const files = new Map<string, FileKey>();
    const wanted = new Map<string, { explicit: boolean; host: string }>();
    for (const ep of all) {
      const list = ep.identityFiles.length ? ep.identityFiles : DEFAULT_IDENTITIES.map((f) => path.join(os.homedir(), '.ssh', f));
      for (const f of list) if (!wanted.get(f)?.explicit) wanted.set(f, { explicit: ep.identityFiles.length > 0, host: ep.name });
    }
    await Promise.all(
      [...wanted].map(async ([file, { explicit, host }]) => {
        try {
          const k = await loadKeyFile(file, agentKeys, sources);
          if (k) files.set(file, k);
          else if (explicit) errors.push(new InputError(`identity file ${file} (for ${host}) does not exist`));
        } catch (e) {
          // A default key that can't be used is skipped, as ssh skips it; an unanswered passphrase prompt stops the run.
          if (explicit || !(e instanceof InputError) || e instanceof NoInputError)
            errors.push(e instanceof InputError && !(e instanceof NoInputError) ? e : new InputError(`identity file ${file}: ${(e as Error).message}`));
        }
      }),
    );
    const become = new Map<string, BecomeSpec>();
    let runPassword: { value: string; source: string } | undefined | null = null;
    // One read (and one error) per password file, however many hosts share it.
    const passwordFiles = new Map<string, Promise<string>>();
    const fileUsers = new Map<string, string[]>();
    for (const ep of all) {
      if (!ep.become) continue;
      const spec: BecomeSpec = { user: ep.become.user };
      const file = ep.become.passwordFile;
      if (ep.become.password) {
        try {
          spec.password = fromRef(ep.become.password);
          spec.passwordSource = `become_password (${describeSecretRef(ep.become.password.ref)})`;
        } catch (e) {
          errors.push(new InputError((e as Error).message));
        }
      } else if (file) {
        if (!passwordFiles.has(file)) passwordFiles.set(file, readPasswordFile(file));
        fileUsers.set(file, [...(fileUsers.get(file) ?? []), ep.name]);
        spec.passwordSource = `become_password_file ${file}`;
      } else {
        if (runPassword === null) runPassword = await sources.becomePassword();
        if (runPassword) {
          spec.password = runPassword.value;
          spec.passwordSource = runPassword.source;
        }
      }
      become.set(ep.name, spec);
    }
    for (const [file, reading] of passwordFiles) {
      try {
        const pw = await reading;
        addSecret(pw);
        for (const name of fileUsers.get(file)!) become.get(name)!.password = pw;
      } catch (e) {
        const users = fileUsers.get(file)!;
        errors.push(
          new InputError(
            `${(e as Error).message} (become_password_file of ${users.slice(0, 5).join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''})`,
          ),
        );
      }
    }
    if (runPassword) addSecret(runPassword.value);
    if (errors.length) throw errors.length === 1 ? errors[0] : new InputErrors(dedupe(errors));
    return new Credentials(agentSocket, agentKeys, files, become);
  }

  becomeFor(ep: Endpoint): BecomeSpec | undefined {
    return this.become.get(ep.name);
  }

  /**
   * Keys in the order OpenSSH offers them: agent keys that match a configured identity file, then the
   * agent's other keys (unless IdentitiesOnly), then identity files the agent doesn't hold.
   */
  authFor(ep: Endpoint): { methods: AnyAuthMethod[]; described: string[] } {
    const configured = ep.identityFiles.length ? ep.identityFiles : [...this.files.keys()].filter((f) => path.dirname(f) === path.join(os.homedir(), '.ssh'));
    const fileKeys = configured.map((f) => this.files.get(f)).filter((k): k is FileKey => !!k);
    const inAgent = (blob: Buffer | undefined) => !!blob && this.agentKeys.some((a) => a.getPublicSSH().equals(blob));
    const matching = this.agentKeys.filter((a) => fileKeys.some((k) => k.publicBlob?.equals(a.getPublicSSH())));
    const others = ep.identitiesOnly ? [] : this.agentKeys.filter((a) => !matching.includes(a));
    const methods: AnyAuthMethod[] = [];
    const described: string[] = [];
    const agentOrder = [...matching, ...others];
    if (this.agentSocket && agentOrder.length) {
      methods.push({ type: 'agent', username: ep.user, agent: new ChosenKeysAgent(this.agentSocket, agentOrder) });
      described.push(`${agentOrder.length} agent key(s)`);
    }
    for (const k of fileKeys) {
      if (!k.key || inAgent(k.publicBlob)) continue;
      methods.push({ type: 'publickey', username: ep.user, key: k.key as unknown as Buffer });
      described.push(k.file);
    }
    return { methods, described };
  }
}

function chain(ep: Endpoint): Endpoint[] {
  return ep.jump ? [...chain(ep.jump), ep] : [ep];
}

function dedupe(errors: InputError[]): InputError[] {
  const seen = new Set<string>();
  return errors.filter((e) => (seen.has(e.message) ? false : (seen.add(e.message), true)));
}

function fromRef(r: LocatedSecretRef): string {
  try {
    return resolveSecretRef(r.ref);
  } catch (e) {
    throw new InputError(`${r.at}: ${(e as Error).message}`);
  }
}

/** An identity_passphrase from the inventory answers for the key files of its hosts before the environment or a prompt. */
function withInventoryPassphrases(all: Endpoint[], given: SecretSources): SecretSources {
  const byFile = new Map<string, LocatedSecretRef>();
  for (const ep of all) {
    if (!ep.identityPassphrase) continue;
    for (const f of ep.identityFiles) if (!byFile.has(f)) byFile.set(f, ep.identityPassphrase);
  }
  if (byFile.size === 0) return given;
  return {
    ...given,
    passphrase: async (file) => {
      const r = byFile.get(file);
      return r ? { value: fromRef(r), source: `identity_passphrase (${describeSecretRef(r.ref)})` } : given.passphrase(file);
    },
  };
}

async function loadKeyFile(file: string, agentKeys: ParsedKey[], sources: SecretSources): Promise<FileKey | undefined> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`cannot read identity file ${file}: ${(e as Error).message}`);
  }
  let publicBlob = openSshPublicBlob(raw) ?? (await readPublicFile(`${file}.pub`));
  const plain = utils.parseKey(raw);
  if (!(plain instanceof Error)) {
    const key = Array.isArray(plain) ? (plain[0] as ParsedKey) : plain;
    return { file, publicBlob: publicBlob ?? key.getPublicSSH(), key };
  }
  if (!/encrypted|passphrase/i.test(plain.message)) throw new InputError(`identity file ${file} is not a private key hoist can read: ${plain.message}`);
  // Encrypted: the agent holding the same key makes the passphrase unnecessary, as with OpenSSH.
  const blob = publicBlob;
  if (blob && agentKeys.some((a) => a.getPublicSSH().equals(blob))) return { file, publicBlob: blob };
  const pass = await sources.passphrase(file);
  if (!pass) {
    throw new InputError(
      `identity file ${file} is encrypted and not in the ssh-agent: add it with ssh-add, set HOIST_SSH_PASSPHRASE, or run on a terminal to be asked`,
    );
  }
  const dec = utils.parseKey(raw, pass.value);
  if (dec instanceof Error) throw new InputError(`cannot decrypt identity file ${file} with the passphrase from ${pass.source}: wrong passphrase`);
  const key = Array.isArray(dec) ? (dec[0] as ParsedKey) : dec;
  publicBlob ??= key.getPublicSSH();
  return { file, publicBlob, key };
}

async function readPublicFile(file: string): Promise<Buffer | undefined> {
  try {
    const k = utils.parseKey(await readFile(file));
    if (k instanceof Error) return undefined;
    return (Array.isArray(k) ? (k[0] as ParsedKey) : k).getPublicSSH();
  } catch {
    return undefined;
  }
}

async function readPasswordFile(file: string): Promise<string> {
  let st;
  try {
    st = await stat(file);
  } catch {
    throw new InputError(`${file} does not exist`);
  }
  if (!st.isFile()) throw new InputError(`${file} is not a file`);
  if (st.mode & 0o077) throw new InputError(`${file} is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`);
  const text = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  if (!text) throw new InputError(`${file} is empty`);
  if (text.includes('\n')) throw new InputError(`${file} has more than one line; it must hold the password only`);
  return text;
}

function agentIdentities(socket: string): Promise<ParsedKey[]> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve([]), 3000);
    new OpenSSHAgent(socket).getIdentities((err, keys) => {
      clearTimeout(timer);
      // An agent that can't be reached is like no agent: identity files may still do.
      resolve(err || !keys ? [] : keys.filter((k): k is ParsedKey => 'getPublicSSH' in k));
    });
  });
}

/** The agent, offering only the keys chosen for a host, in the chosen order. */
class ChosenKeysAgent extends BaseAgent<ParsedKey> {
  private readonly agent: InstanceType<typeof OpenSSHAgent>;
  constructor(
    socket: string,
    private readonly keys: ParsedKey[],
  ) {
    super();
    this.agent = new OpenSSHAgent(socket);
  }
  getIdentities(cb: IdentityCallback<ParsedKey>): void {
    cb(undefined, this.keys);
  }
  sign(pubKey: ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    if (typeof options === 'function') this.agent.sign(pubKey, data, options);
    else this.agent.sign(pubKey, data, options, cb);
  }
}
