#!/usr/bin/env node
// Bundles the demo client (src/web/) into src/web/dist/: index.html, app.js (+ app.js.map), app.css.
//
//   node scripts/build-web.mjs            build when a source is newer than the last build
//   node scripts/build-web.mjs --force    build anyway
//   node scripts/build-web.mjs --quiet    print nothing when there is nothing to do
//
// Idempotent and fast: esbuild's metafile lists every file the bundle was made from (the client's
// own sources, src/protocol/, mediasoup-client...); they are recorded in dist/.build.json and the
// next run skips the build when none of them (nor index.html, app.css, this script) is newer.
// Outputs are written to temporary names and renamed into place, the stamp last. Exits non-zero
// on any error.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const webDir = join(root, 'src/web');
const distDir = join(webDir, 'dist');
const stampPath = join(distDir, '.build.json');
const entry = join(webDir, 'main.ts');
const htmlSource = join(webDir, 'index.html');
const cssSource = join(webDir, 'app.css');
const self = fileURLToPath(import.meta.url);
const outputs = ['index.html', 'app.js', 'app.css'];

const args = new Set(process.argv.slice(2));
const force = args.has('--force');
const quiet = args.has('--quiet');

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Infinity; // a missing input counts as changed
  }
}

/** Why a build is needed, or null when dist/ is up to date. */
function staleReason() {
  if (force) return '--force';
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath, 'utf8'));
  } catch {
    return 'no previous build';
  }
  for (const name of outputs) if (!existsSync(join(distDir, name))) return `dist/${name} is missing`;
  const built = mtime(stampPath);
  const inputs = [self, htmlSource, cssSource, ...(stamp.inputs ?? []).map((p) => join(root, p))];
  for (const input of inputs) if (mtime(input) > built) return `${relative(root, input)} changed`;
  return null;
}

function writeAtomic(path, content) {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, content);
  renameSync(temporary, path);
}

const version = (content) => createHash('sha256').update(content).digest('hex').slice(0, 12);

async function build(reason) {
  const started = Date.now();
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw new Error(`esbuild is not installed (run npm ci): ${error.message}`);
  }
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    minify: true,
    sourcemap: 'external',
    legalComments: 'none',
    metafile: true,
    write: false,
    outfile: join(distDir, 'app.js'),
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  for (const warning of result.warnings) console.warn(`build-web: warning: ${warning.text}`);
  const js = result.outputFiles.find((file) => file.path.endsWith('app.js'));
  const map = result.outputFiles.find((file) => file.path.endsWith('app.js.map'));
  if (!js) throw new Error('esbuild produced no app.js');
  const css = (await esbuild.transform(readFileSync(cssSource, 'utf8'), { loader: 'css', minify: true, target: ['chrome110', 'firefox115', 'safari16'] })).code;
  const jsText = `${js.text.replace(/\n?\/\/# sourceMappingURL=.*\n?$/, '')}\n//# sourceMappingURL=app.js.map\n`;
  const html = readFileSync(htmlSource, 'utf8').replaceAll('%JS_VERSION%', version(jsText)).replaceAll('%CSS_VERSION%', version(css));
  if (/%[A-Z_]+%/.test(html)) throw new Error(`index.html has an unknown placeholder: ${/%[A-Z_]+%/.exec(html)[0]}`);

  mkdirSync(distDir, { recursive: true });
  rmSync(stampPath, { force: true }); // a build interrupted from here on is redone next time
  writeAtomic(join(distDir, 'app.js'), jsText);
  if (map) writeAtomic(join(distDir, 'app.js.map'), map.contents);
  writeAtomic(join(distDir, 'app.css'), css);
  writeAtomic(join(distDir, 'index.html'), html);
  const inputs = Object.keys(result.metafile.inputs)
    .map((input) => relative(root, resolve(process.cwd(), input)))
    .sort();
  writeAtomic(stampPath, `${JSON.stringify({ builtAt: new Date().toISOString(), inputs }, null, 1)}\n`);
  const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
  console.log(`build-web: src/web/dist/ built in ${((Date.now() - started) / 1000).toFixed(2)}s (${reason}; app.js ${kib(jsText.length)}, ${inputs.length} inputs)`);
}

try {
  const reason = staleReason();
  if (reason === null) {
    if (!quiet) console.log('build-web: src/web/dist/ is up to date');
  } else {
    await build(reason);
  }
} catch (error) {
  const details = error?.errors?.length
    ? error.errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : ''}${e.text}`).join('\n  ')
    : (error?.stack ?? String(error));
  console.error(`build-web: FAILED\n  ${details}`);
  process.exit(1);
}
