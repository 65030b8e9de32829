import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { demoNeedsWarning, isLoopbackHost, resolveDemo } from '../../src/config/demo.ts';

t.test('defaults load, are resolved and frozen', async (t) => {
  const config = loadConfig({ env: {}, cwd: '/srv/callplane' });
  t.equal(config.http.port, 8080);
  t.equal(config.data_dir, '/srv/callplane/data', 'relative data_dir resolves against cwd');
  t.equal(config.storage.local_dir, '/srv/callplane/data/storage');
  t.ok(config.media.workers >= 1, 'workers: 0 becomes the core count');
  t.equal(config.payments.provider, 'test');
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.http), 'config is frozen');
});

t.test('env overrides: fixed names and the CALLPLANE_<PATH> rule, with types converted', async (t) => {
  const config = loadConfig({
    env: {
      CALLPLANE_HTTP_PORT: '9090',
      CALLPLANE_DATA_DIR: '/var/lib/callplane',
      CALLPLANE_API_KEY: 'k'.repeat(20),
      DATABASE_URL: 'postgres://u:p@db:5432/callplane',
      CALLPLANE_MEDIA_PORT_BASE: '41000',
      CALLPLANE_STORAGE_S3_FORCE_PATH_STYLE: 'false',
      CALLPLANE_MEDIA_ANNOUNCED_ADDRESS: '203.0.113.7',
    },
  });
  t.equal(config.http.port, 9090);
  t.equal(config.data_dir, '/var/lib/callplane');
  t.equal(config.auth.api_key, 'k'.repeat(20));
  t.equal(config.database.url, 'postgres://u:p@db:5432/callplane');
  t.equal(config.media.port_base, 41000);
  t.equal(config.storage.s3.force_path_style, false);
  t.equal(config.media.announced_address, '203.0.113.7');
});

t.test('operator file layers over the defaults and env over the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'callplane-config-'));
  const file = join(dir, 'production.yaml');
  writeFileSync(file, 'http:\n  port: 7000\nmedia:\n  workers: 3\n');
  const config = loadConfig({ env: { CALLPLANE_CONFIG: file, CALLPLANE_HTTP_PORT: '7001' } });
  t.equal(config.media.workers, 3, 'from the file');
  t.equal(config.http.port, 7001, 'env wins over the file');
});

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

t.test('bad values give one line per bad key, naming the key', async (t) => {
  const problems = problemsOf(() =>
    loadConfig({
      env: { CALLPLANE_HTTP_PORT: 'eighty', CALLPLANE_LOG_LEVEL: 'loud', CALLPLANE_MEDIA_WORKERZ: '2' },
      overrides: { storage: { driver: 'ftp' }, http: { hots: 'x' } },
    }),
  );
  t.equal(problems.length, 5, problems.join('\n'));
  t.match(problems.find((p) => p.startsWith('http.port')), /expected integer.*"eighty"/);
  t.match(problems.find((p) => p.startsWith('log.level')), /must be one of .*info/);
  t.match(problems.find((p) => p.startsWith('storage.driver')), /must be one of local, s3/);
  t.ok(problems.some((p) => p.startsWith('http.hots')), 'unknown keys in files are errors');
  t.ok(problems.some((p) => p.startsWith('CALLPLANE_MEDIA_WORKERZ: unknown setting')), 'unknown env settings are errors');
});

t.test('cross-field rules and unreadable files are reported', async (t) => {
  t.match(problemsOf(() => loadConfig({ env: { CALLPLANE_PAYMENTS: 'stripe' } })), [/payments.stripe_secret_key: required/]);
  t.match(problemsOf(() => loadConfig({ env: { CALLPLANE_CONFIG: '/nonexistent/callplane.yaml' } })), [/cannot read/]);
  const dir = mkdtempSync(join(tmpdir(), 'callplane-config-'));
  writeFileSync(join(dir, 'broken.yaml'), 'http: [unclosed');
  t.match(problemsOf(() => loadConfig({ env: { CALLPLANE_CONFIG: join(dir, 'broken.yaml') } })), [/not valid YAML/]);
});

t.test('the HTTP server binds loopback by default, with the demo sign-in on', async (t) => {
  const config = loadConfig({ env: {} });
  t.equal(config.http.host, '127.0.0.1');
  t.match(config.demo, { enabled: true, source: 'default' });
  t.match(config.demo.reason, /127\.0\.0\.1 is a loopback address/);
  t.notOk(demoNeedsWarning(config.demo), 'nothing to warn about');
});

t.test('a non-loopback bind or stripe turns the demo sign-in off unless demo.enabled is set', async (t) => {
  const stripe = { CALLPLANE_PAYMENTS: 'stripe', STRIPE_SECRET_KEY: 'sk_test_x' };
  const cases: Array<[string, Record<string, string>, boolean, 'setting' | 'default']> = [
    ['0.0.0.0 from the environment', { CALLPLANE_HTTP_HOST: '0.0.0.0' }, false, 'default'],
    ['a LAN address', { CALLPLANE_HTTP_HOST: '192.168.1.10' }, false, 'default'],
    ['stripe on loopback', stripe, false, 'default'],
    ['0.0.0.0 and CALLPLANE_DEMO_ENABLED=true', { CALLPLANE_HTTP_HOST: '0.0.0.0', CALLPLANE_DEMO_ENABLED: 'true' }, true, 'setting'],
    ['stripe and CALLPLANE_DEMO_ENABLED=true', { ...stripe, CALLPLANE_DEMO_ENABLED: 'true' }, true, 'setting'],
    ['loopback and CALLPLANE_DEMO_ENABLED=false', { CALLPLANE_DEMO_ENABLED: 'false' }, false, 'setting'],
    ['an empty CALLPLANE_DEMO_ENABLED (null: the default rule)', { CALLPLANE_HTTP_HOST: '0.0.0.0', CALLPLANE_DEMO_ENABLED: '' }, false, 'default'],
  ];
  for (const [name, env, enabled, source] of cases) {
    t.match(loadConfig({ env }).demo, { enabled, source }, name);
  }

  const off = loadConfig({ env: { CALLPLANE_HTTP_HOST: '0.0.0.0' } }).demo;
  t.match(off.reason, /0\.0\.0\.0 is not a loopback address.*demo\.enabled: true.*CALLPLANE_DEMO_ENABLED=true/, 'says why and how to turn it on');
  t.ok(demoNeedsWarning(off), 'the default turning it off is logged as a warning');
  const both = loadConfig({ env: { ...stripe, CALLPLANE_HTTP_HOST: '0.0.0.0' } }).demo;
  t.match(both.reason, /not a loopback address and payments\.provider is stripe/, 'every reason is named');
  const forced = loadConfig({ env: { CALLPLANE_HTTP_HOST: '0.0.0.0', CALLPLANE_DEMO_ENABLED: 'true' } }).demo;
  t.match(forced.reason, /anyone who can reach the server can create accounts/);
  t.ok(demoNeedsWarning(forced), 'on where strangers may reach it: a warning');
  t.notOk(demoNeedsWarning(loadConfig({ env: { CALLPLANE_DEMO_ENABLED: 'false' } }).demo), 'off by choice: no warning');
});

t.test('demo.enabled set in the operator file counts as set; the file\'s host counts too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'callplane-config-'));
  const exposed = join(dir, 'exposed.yaml');
  writeFileSync(exposed, 'http:\n  host: 0.0.0.0\n');
  t.match(loadConfig({ env: { CALLPLANE_CONFIG: exposed } }).demo, { enabled: false, source: 'default' });
  const enabled = join(dir, 'enabled.yaml');
  writeFileSync(enabled, 'http:\n  host: 0.0.0.0\ndemo:\n  enabled: true\n');
  t.match(loadConfig({ env: { CALLPLANE_CONFIG: enabled } }).demo, { enabled: true, source: 'setting' });
  t.match(loadConfig({ env: { CALLPLANE_CONFIG: enabled, CALLPLANE_DEMO_ENABLED: 'false' } }).demo, { enabled: false, source: 'setting' }, 'the environment wins over the file');
  t.match(problemsOf(() => loadConfig({ env: { CALLPLANE_DEMO_ENABLED: 'yes' } })), [/^demo\.enabled: /], 'anything but true, false or null is refused');
});

t.test('loopback addresses', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) t.ok(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', '::ffff:10.0.0.1', 'fe80::1%eth0', 'calls.example.com', '128.0.0.1']) t.notOk(isLoopbackHost(host), host);
});

t.test('resolveDemo: an explicit setting always decides', async (t) => {
  t.match(resolveDemo(false, { host: '127.0.0.1' }, { provider: 'test' }), { enabled: false, source: 'setting', risks: [] });
  t.match(resolveDemo(true, { host: '0.0.0.0' }, { provider: 'stripe' }), { enabled: true, source: 'setting' });
  t.equal(resolveDemo(null, { host: '0.0.0.0' }, { provider: 'stripe' }).risks.length, 2);
});
