// ESLint flat config: the recommended rules of ESLint and typescript-eslint (no type-aware
// rules: `tsc --noEmit` in `npm run lint` does the type checking), kept to a few overrides.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Node globals for the plain JavaScript files (TypeScript files are checked by tsc instead,
// and typescript-eslint turns `no-undef` off for them).
const nodeGlobals = Object.fromEntries(
  [
    'AbortController', 'AbortSignal', 'Buffer', 'URL', 'URLSearchParams', 'TextDecoder', 'TextEncoder',
    'clearImmediate', 'clearInterval', 'clearTimeout', 'console', 'fetch', 'global', 'globalThis',
    'process', 'queueMicrotask', 'setImmediate', 'setInterval', 'setTimeout', 'structuredClone',
  ].map((name) => [name, 'readonly']),
);

export default defineConfig(
  globalIgnores(['node_modules/', 'data/', '.tap/', 'coverage/', 'dist/', 'src/web/dist/']),
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'scripts/**/*.{ts,js,mjs}', 'bin/**/*.{js,mjs}', 'workers/**/*.{ts,mjs}', '*.{js,mjs}'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['**/*.{js,mjs}'],
    languageOptions: { globals: nodeGlobals },
  },
);
