import { envSecrets } from '../runner/run.js';
import type { SecretSources } from '../ssh/credentials.js';
import { addSecret } from '../util/redact.js';
import { askHidden, canPrompt } from './prompt.js';
import { InputError } from '../util/errors.js';

/**
 * Secrets for a run started from the CLI: the environment first; on a terminal, a prompt for each
 * encrypted key that no agent holds; with -K, the sudo password asked once before anything connects.
 */
export async function cliSecrets(askBecomePass: boolean): Promise<SecretSources> {
  const env = envSecrets();
  let become: { value: string; source: string } | undefined;
  if (askBecomePass) {
    if (!canPrompt()) throw new InputError('-K (--ask-become-pass) needs a terminal; without one, set HOIST_BECOME_PASSWORD or become_password_file');
    become = { value: await askHidden('BECOME password: '), source: '-K' };
    addSecret(become.value);
  }
  const asked = new Map<string, Promise<{ value: string; source: string } | undefined>>();
  return {
    becomePassword: async () => become ?? env.becomePassword(),
    passphrase: async (file) => {
      const fromEnv = await env.passphrase(file);
      if (fromEnv || !canPrompt()) return fromEnv;
      // One question per key file, however many hosts use it; prompts never overlap.
      if (!asked.has(file)) {
        const prev = [...asked.values()].pop() ?? Promise.resolve(undefined);
        asked.set(
          file,
          prev.then(() => askHidden(`Enter passphrase for key '${file}': `)).then((value) => ({ value, source: 'the terminal' })),
        );
      }
      return asked.get(file)!;
    },
  };
}
