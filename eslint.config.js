// hoist's lint rules: typescript-eslint's recommended set, with types at the boundaries (no `any`)
// and promises that are awaited or handed on. `npm run lint`; CI runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.fleet*/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // hoist matches control characters on purpose: to escape or refuse them in user text.
      'no-control-regex': 'off',
      // A timer a callback clears before it is set, and `let { a, b }` where only one is reassigned, stay `let`.
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-explicit-any': 'error',
      // node:test's test/describe return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Every error hoist throws says what kind it is (src/util/errors.ts): the kind gives the exit code
    // and the `error.kind` of --json output; a bare Error would be reported as a bug in hoist.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ThrowStatement > NewExpression[callee.name=/^(Error|TypeError|RangeError|SyntaxError)$/]',
          message: 'throw a HoistError of the right kind (InputError, HostError, ControllerError, InternalError; src/util/errors.ts), not a bare Error',
        },
      ],
    },
  },
);
