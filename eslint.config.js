// ESLint: typescript-eslint's type-checked rules, which use the compiler's own types, so a promise
// nobody awaits or an `any` flowing into a typed call is found across modules. Prettier owns the
// layout (eslint-config-prettier turns off every rule it would fight with).
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'bench/results/', '.tmp/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Every failure path must deny: a promise returned inside try/catch skips the catch.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A new deny reason or credential kind must reach every switch over them.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-deprecated': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // `let x; ...closure reading x...; x = ...`: a const there would be in its temporal dead zone if
      // the closure ran before the assignment, so such a `let` stays.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_name` marks a binding left unused on purpose (an interface's parameter, a field left out of a copy).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // An async method that implements an async interface without awaiting anything is normal here.
      '@typescript-eslint/require-await': 'off',
      // Input validation matches control characters on purpose (paths, header values, tokens).
      'no-control-regex': 'off',
    },
  },
  {
    // Tests, the bench and scripts read YAML, JSON, HTTP/2 headers and protobuf objects as `any` on
    // purpose and print whatever they hold; none of it ships.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Plain JavaScript outside the TypeScript project: no type information to lint with.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
  {
    // Prettier wraps code at 120 columns (.prettierrc.json) but leaves comments alone: they must fit
    // too. (After eslint-config-prettier, which would turn this rule off.)
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
    },
  },
);
