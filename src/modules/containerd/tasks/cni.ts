import { s } from '../../../util/schema.js';
import { quote } from '../../../ssh/quote.js';
import type { Action } from '../../../tasks/types.js';
import { containerdTask } from '../task.js';
import { fileProbe, parseFileProbe, planFile } from '../../../tasks/lib/files.js';
import { CNI_BRIDGE, cniConflistPath, renderCniConflist, staleBridgeScript } from '../config/cni.js';

/**
 * hoist's CNI network (cni_conflist): written when asked for, removed when no longer asked for or
 * when the node is reset. Only hoist's own file name is touched; a cluster's CNI configuration
 * beside it is left alone. containerd watches cni_conf_dir, so no restart is needed. hoist's bridge
 * goes with the file, or when it holds another subnet's address, since the bridge plugin would
 * refuse it; pods attached to it lose their network then (they had addresses of the old subnet).
 */
export default containerdTask({
  name: 'containerd_cni',
  summary: 'The bridge + host-local + loopback network of cni_conflist = "bridge" in cni_conf_dir (removed when unset); off by default.',
  params: s.object({
    remove: s.bool().default(false).describe("remove hoist's network configuration whatever cni_conflist says (reset)"),
  }),
  async prepare(p, ctx) {
    const st = ctx.settings;
    const path = cniConflistPath(st.runtime.cniConfDir);
    const net = p.remove ? null : st.cni;
    const text = net ? renderCniConflist(net, st.runtime.version) : null;
    return { path, text, bridge: staleBridgeScript(net) };
  },
  probes: (_p, ctx) => ({ conflist: fileProbe(ctx.prepared.path, ctx.options.diff) }),
  plan(_p, ctx) {
    const { path, text, bridge } = ctx.prepared;
    const have = parseFileProbe(ctx.probe('conflist'));
    const actions: Action[] = [];
    if (text !== null) {
      const a = planFile({ path, content: Buffer.from(text), mode: 0o644, backup: false }, have, ctx.state, ctx.options);
      if (a) {
        actions.push({
          ...a,
          async run(c, actx) {
            await a.run(c, actx);
            await c.check(bridge, `replace a stale ${CNI_BRIDGE} bridge`);
          },
        });
      }
    } else if (have.exists) {
      ctx.state.pending = true;
      actions.push({
        kind: 'change',
        summary: `remove ${path} and the ${CNI_BRIDGE} bridge`,
        run: (c) => c.check(`rm -f ${quote(path)}\n${bridge}`, `remove ${path}`).then(() => undefined),
      });
    }
    return { actions };
  },
});
