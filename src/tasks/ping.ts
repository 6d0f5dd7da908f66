import { s } from '../util/schema.js';
import { defineTask } from './types.js';
import { HostError } from '../util/errors.js';

export default defineTask({
  name: 'ping',
  summary: 'Checks that hoist can log in and run bash (as root when become is set).',
  params: s.object({}),
  probes: () => ({ pong: 'echo pong; id -u' }),
  plan(_p, ctx) {
    const r = ctx.probe('pong');
    if (!r.out.startsWith('pong')) throw new HostError(`unexpected answer: ${r.out.slice(0, 200)}`);
    return { actions: [] };
  },
});
