import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

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
