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

// The layers of src/ (docs/architecture.md): a folder may import its own layer and the layers below,
// never one above. Checked on the import string: relative imports name the folder they reach.
const LAYERS = [
  { name: 'base', folders: ['shared', 'config', 'protocol'] },
  { name: 'infrastructure', folders: ['db', 'media', 'storage', 'jobs', 'sfu'] },
  { name: 'domain', folders: ['identity', 'calls', 'billing', 'turn', 'chat', 'recording', 'webhooks'] },
  { name: 'transport', folders: ['http', 'signaling', 'realtime', 'ws'] },
  { name: 'top', folders: ['cli', 'loadtest'], files: ['main.ts', 'context.ts'] },
];
const reaching = (folders, files = []) =>
  `^(\\.\\./)+(${[...folders.map((f) => `${f}/`), ...files.map((f) => f.replace('.', '\\.'))].join('|')})`;
const layerRules = LAYERS.map((layer, i) => {
  const above = LAYERS.slice(i + 1);
  const folders = [...above.flatMap((l) => l.folders), 'web'];
  const files = above.flatMap((l) => l.files ?? []);
  return {
    files: [...layer.folders.map((f) => `src/${f}/**/*.ts`), ...(layer.files ?? []).map((f) => `src/${f}`)],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: reaching(folders, files), message: `src/ layers: the ${layer.name} layer may not import ${above.map((l) => l.name).concat('web').join(', ')} (docs/architecture.md)` }] }],
    },
  };
});
// The browser client shares only the wire contracts with the server.
const webRule = {
  files: ['src/web/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ regex: reaching(LAYERS.flatMap((l) => l.folders).filter((f) => f !== 'protocol'), ['main.ts', 'context.ts']), message: 'src/web may import only src/protocol from the server (docs/architecture.md)' }] }],
  },
};

// The load tester is a client of any callplane server: it shares only the wire contracts and the base helpers.
const loadtestRule = {
  files: ['src/loadtest/**/*.ts'],
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ regex: reaching(LAYERS.flatMap((l) => l.folders).filter((f) => f !== 'protocol' && f !== 'shared' && f !== 'loadtest').concat('web'), ['main.ts', 'context.ts']), message: 'src/loadtest may import only src/shared and src/protocol from the server (docs/loadtest.md)' }] }],
  },
};

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
  ...layerRules,
  webRule,
  loadtestRule,
);
