import { s } from '../../../util/schema.js';
import { quote } from '../../../ssh/quote.js';
import { armFilesRollback } from '../rollback.js';
import type { Action } from '../../../tasks/types.js';
import { containerdTask } from '../task.js';
import { previousVersion } from '../slots.js';
import { fileProbe, parseFileProbe, planFile } from '../../../tasks/lib/files.js';
import { renderConfig, renderCrictlYaml } from '../render.js';
import { BIN, CONFIG_FILE, CRICTL_YAML } from '../paths.js';
import { planDataDirs } from '../../../tasks/lib/data-dirs.js';

export default containerdTask({
  name: 'containerd_config',
  summary: '/etc/containerd/config.toml for the target version (validated by containerd before it goes live), the drop-in directory and /etc/crictl.yaml.',
  params: s.object({
    crictl_timeout: s.int(0, 3600).default(10),
    crictl_debug: s.bool().default(false),
  }),
  async prepare(p, ctx) {
    const st = ctx.settings;
    const config = renderConfig(st.runtime);
    const crictl = renderCrictlYaml({ endpoint: `unix://${st.runtime.stateDir}/containerd.sock`, timeout: p.crictl_timeout, debug: p.crictl_debug });
    return { st, config, crictl };
  },
  probes: (_p, ctx) => ({
    config: fileProbe(CONFIG_FILE, ctx.options.diff && !ctx.prepared.config.secret, ctx.prepared.config.secret),
    crictl: fileProbe(CRICTL_YAML, ctx.options.diff),
    dropins: ctx.prepared.st.runtime.importsDir ? `[ -d ${quote(ctx.prepared.st.runtime.importsDir)} ] && echo present || echo absent` : 'echo none',
  }),
  plan(_p, ctx) {
    const { st, config, crictl } = ctx.prepared;
    // root_dir and state_dir are made (and recorded) by hoist before containerd starts and fills them.
    const actions: Action[] = planDataDirs(ctx.state);
    const dropins = st.runtime.importsDir;
    if (dropins && ctx.probe('dropins').out.trim() === 'absent') {
      // hoist creates the drop-in directory but never empties it: other tools' fragments live there.
      actions.push({
        kind: 'change',
        summary: `create ${dropins}/`,
        run: (c) => c.check(`mkdir -p ${quote(dropins)}`, `create ${dropins}`).then(() => undefined),
      });
    }
    const cfg = planFile(
      {
        path: CONFIG_FILE,
        content: Buffer.from(config.text),
        mode: config.secret ? 0o600 : 0o644,
        secret: config.secret,
        // The installed containerd must accept the file before it replaces the live one.
        validate: (staged) => `${BIN.containerd} --config ${staged} config dump >/dev/null`,
      },
      parseFileProbe(ctx.probe('config')),
      ctx.state,
      ctx.options,
    );
    if (cfg) actions.push(cfg);
    const cr = planFile({ path: CRICTL_YAML, content: Buffer.from(crictl), mode: 0o644 }, parseFileProbe(ctx.probe('crictl')), ctx.state, ctx.options);
    if (cr) actions.push(cr);
    if (actions.some((a) => a.kind === 'change')) armFilesRollback(ctx.state, previousVersion.peek(ctx.state), [CONFIG_FILE, CRICTL_YAML]);
    return { actions };
  },
});
