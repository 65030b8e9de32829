/**
 * The generic job runner (src/jobs/) with a task of a module other than billing: a job added inside a
 * transaction runs once that transaction commits, and never when it rolls back; a failing attempt
 * is retried; a task name cannot be registered twice.
 */
import t from 'tap';
import { createDatabase, inTransaction } from '../../src/db/database.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { SqlJobQueue, TaskRegistry, createJobPool, migrateJobs, startJobRunner, taskKind } from '../../src/jobs/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { eventually } from '../helpers/wait.ts';

const logger = silentLogger();
const databaseUrl = await createTestDatabase(t);
const db = createDatabase(databaseUrl, 2);
t.teardown(() => db.destroy());
const pool = createJobPool(databaseUrl, 4, logger);
t.teardown(() => pool.end());
await migrateJobs(pool, logger);

// A throwaway module's task: it records what it was given, and fails its first attempt when asked to.
const ECHO = taskKind<{ word: string; failFirst?: boolean }>('test_echo');
const seen: Array<{ word: string; attempt: number }> = [];
const attempts = new Map<string, number>();
const tasks = new TaskRegistry();
tasks.register(ECHO, async ({ word, failFirst }) => {
  const attempt = (attempts.get(word) ?? 0) + 1;
  attempts.set(word, attempt);
  if (failFirst && attempt === 1) throw new Error(`${word}: first attempt fails`);
  seen.push({ word, attempt });
});
const runner = await startJobRunner({ pgPool: pool, concurrency: 2, pollIntervalMs: 50, logger, tasks });
t.teardown(() => runner.stop());
const queue = new SqlJobQueue();

t.test('a job added in a committed transaction runs; one in a rolled-back transaction never does', async (t) => {
  await inTransaction(db, (tx) => queue.add(tx, ECHO, { word: 'committed' }));
  await inTransaction(db, async (tx) => {
    await queue.add(tx, ECHO, { word: 'rolled-back' });
    throw new Error('roll back');
  }).catch(() => undefined);
  // A marker added after both: once it ran, the rolled-back job would have run too if it existed.
  await inTransaction(db, (tx) => queue.add(tx, ECHO, { word: 'marker' }));
  const words = await eventually(() => seen.map((s) => s.word), (list) => list.includes('committed') && list.includes('marker'));
  t.ok(words.includes('committed'), 'the committed job ran');
  t.notOk(words.includes('rolled-back'), 'the rolled-back job does not exist');
});

t.test('a failing attempt is retried', async (t) => {
  await queue.add(db, ECHO, { word: 'flaky', failFirst: true }, { runAt: new Date() });
  // graphile-worker's first retry backs off about 2 s (exp(1) seconds).
  const retried = await eventually(() => seen.find((s) => s.word === 'flaky'), Boolean, 20_000);
  t.same(retried, { word: 'flaky', attempt: 2 });
});

t.test('a job key keeps one job where two are added', async (t) => {
  await inTransaction(db, async (tx) => {
    await queue.add(tx, ECHO, { word: 'keyed-1' }, { jobKey: 'one', runAt: new Date(Date.now() + 500) });
    await queue.add(tx, ECHO, { word: 'keyed-2' }, { jobKey: 'one', runAt: new Date(Date.now() + 500) });
  });
  const words = await eventually(() => seen.map((s) => s.word), (list) => list.includes('keyed-2'));
  t.ok(words.includes('keyed-2'), 'the later job ran');
  t.notOk(words.includes('keyed-1'), 'the earlier one was replaced');
});

t.test('registering a task name twice is refused', async (t) => {
  t.throws(() => tasks.register(ECHO, async () => undefined), /registered twice/);
  t.throws(() => taskKind('Not-Snake'), /snake_case/);
  t.same(tasks.names, ['test_echo']);
});
