// Rewrites mediasoup's worker meson files so the worker builds offline against
// Debian's system libraries: every subproject() (which would download sources)
// becomes a dependency(), and the test/fuzzer targets (Catch2 is a subproject) are dropped.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const workerDir = process.argv[2];
if (!workerDir) {
  console.error('usage: patch-meson.mjs <mediasoup/worker dir>');
  process.exit(2);
}

function replaceOnce(text, from, to, what) {
  const index = text.indexOf(from);
  if (index < 0) throw new Error(`patch-meson: cannot find ${what}`);
  return text.slice(0, index) + to + text.slice(index + from.length);
}

function replaceBetween(text, startMarker, endMarker, replacement, what) {
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker, start);
  if (start < 0 || end < 0) throw new Error(`patch-meson: cannot find ${what}`);
  return text.slice(0, start) + replacement + text.slice(end);
}

const systemDependencies = `openssl_dep = dependency('openssl')
nlohmann_json_dep = dependency('nlohmann_json')
libuv_dep = dependency('libuv')
# Debian installs srtp.h under <includedir>/srtp2 while mediasoup includes <srtp.h>.
libsrtp2_dep = declare_dependency(
  dependencies: dependency('libsrtp2'),
  include_directories: include_directories('/usr/include/srtp2'),
)
usrsctp_dep = dependency('usrsctp')
absl_container_dep = [
  dependency('absl_flat_hash_map'),
  dependency('absl_flat_hash_set'),
  dependency('absl_btree'),
  dependency('absl_inlined_vector'),
]
absl_strings_dep = dependency('absl_strings')
absl_types_dep = [dependency('absl_optional'), dependency('absl_memory')]
`;

const mainPath = join(workerDir, 'meson.build');
let main = readFileSync(mainPath, 'utf8');
// Debian 12 ships meson 1.0.1; nothing this build uses needs 1.1.
main = replaceOnce(main, "meson_version: '>= 1.1.0'", "meson_version: '>= 1.0.0'", 'meson_version');
main = replaceBetween(main, 'openssl_proj = subproject(', 'libwebrtc_include_directories', systemDependencies, 'subproject block');
main = replaceBetween(
  main,
  'dependencies = [\n',
  "if host_machine.system() == 'windows'",
  `dependencies = [
  absl_container_dep,
  openssl_dep,
  nlohmann_json_dep,
  libuv_dep,
  libsrtp2_dep,
  usrsctp_dep,
  libwebrtc_dep,
]

link_whole = [
  libwebrtc,
]

`,
  'dependency lists',
);
const testsStart = main.indexOf('test_sources = [');
if (testsStart < 0) throw new Error('patch-meson: cannot find test targets');
main = main.slice(0, testsStart);
writeFileSync(mainPath, main);

const webrtcPath = join(workerDir, 'deps/libwebrtc/meson.build');
let webrtc = readFileSync(webrtcPath, 'utf8');
webrtc = replaceBetween(webrtc, 'abseil_cpp_proj = subproject(', 'local_include_directories =', '', 'libwebrtc abseil subproject');
webrtc = webrtc
  .replaceAll("openssl_proj.get_variable('openssl_dep')", 'openssl_dep')
  .replaceAll("abseil_cpp_proj.get_variable('absl_strings_dep')", 'absl_strings_dep')
  .replaceAll("abseil_cpp_proj.get_variable('absl_types_dep')", 'absl_types_dep')
  .replaceAll("nlohmann_json_proj.get_variable('nlohmann_json_dep')", 'nlohmann_json_dep')
  .replaceAll("libuv_proj.get_variable('libuv_dep')", 'libuv_dep');
if (webrtc.includes('_proj')) throw new Error('patch-meson: libwebrtc still references a subproject');
writeFileSync(webrtcPath, webrtc);
console.log('patch-meson: worker meson files now use system dependencies');
