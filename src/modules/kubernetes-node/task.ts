import { s, type ObjectSchema, type Shape } from '../../util/schema.js';
import type { TaskDefinition } from '../../tasks/types.js';
import type { NodeSettings } from './settings.js';
import { HostError } from '../../util/errors.js';

/** A task of the kubernetes-node module: its context carries the host's node settings, checked before any connection. */
export function nodeTask<S extends ObjectSchema<Shape>, R = undefined>(def: TaskDefinition<S, R, NodeSettings>): TaskDefinition<S, R, NodeSettings> {
  return def;
}

/** What a preflight found: notes for a ready node, else the problems, each naming the fix. */
export interface PreflightVerdict {
  lines: string[];
  problems: string[];
}

/**
 * A read-only preflight that `hoist verify` runs: one script on the host, judged on the controller;
 * the host fails with every problem listed, as kubeadm's preflight would refuse the join.
 */
export function preflightTask(def: {
  name: string;
  summary: string;
  check: string;
  script: (st: NodeSettings) => string;
  judge: (st: NodeSettings, out: string) => PreflightVerdict;
}) {
  return nodeTask({
    name: def.name,
    summary: def.summary,
    params: s.object({}),
    verifies: true,
    plan(_p, ctx) {
      const st = ctx.settings;
      return {
        actions: [
          {
            kind: 'check',
            summary: def.check,
            async run(conn, actx) {
              const r = await conn.exec(def.script(st));
              const { lines, problems } = def.judge(st, r.stdout);
              for (const l of lines) actx.note(l);
              if (problems.length) throw new HostError(`${ctx.host.name} is not ready to join a cluster:\n  - ${problems.join('\n  - ')}`);
            },
          },
        ],
      };
    },
  });
}
