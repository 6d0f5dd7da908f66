// esbuild plugins shared by the package's bundle (scripts/bundle.mjs) and the single executable's
// (scripts/sea.mjs).

/**
 * ssh2's optional native addons (cpu-features, sshcrypto.node) become a module that throws, as a
 * missing addon does; ssh2 catches that and uses its JavaScript code. Left as a require, a checkout
 * whose cpu-features was never compiled spends 5 ms of every start searching for its binding, and
 * the package (which doesn't ship it) would behave unlike the checkout.
 */
export const noNativeAddons = {
  name: 'no-native-addons',
  setup(b) {
    b.onResolve({ filter: /^cpu-features$|\.node$/ }, (a) => ({ path: a.path, namespace: 'no-native-addon' }));
    b.onLoad({ filter: /.*/, namespace: 'no-native-addon' }, (a) => ({
      loader: 'js',
      contents: `throw new Error(${JSON.stringify(`${a.path}: hoist runs without native addons`)});`,
    }));
  },
};
