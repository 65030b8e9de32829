import t from 'tap';
import { createDatabase, inTransaction } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createTestDatabase } from '../helpers/db.ts';

const db = createDatabase(await createTestDatabase(t), 3);
t.teardown(() => db.destroy());

t.test('migrations apply to an empty database and are idempotent', async (t) => {
  const first = await migrateToLatest(db);
  t.ok((first.results ?? []).length > 0 && first.results!.every((r) => r.status === 'Success'));
  const second = await migrateToLatest(db);
  t.same(second.results, [], 'nothing left to apply');
  const tables = await db.introspection.getTables();
  t.ok(tables.some((table) => table.name === 'users'));
  t.ok(tables.some((table) => table.name === 'idempotency_keys'));
});

t.test('onCommit hooks run after the commit, and never when the transaction rolls back', async (t) => {
  const seen: string[] = [];
  await inTransaction(db, async (tx, onCommit) => {
    await tx.insertInto('users').values({ id: '01J00000000000000000000001', role: 'user', display_name: 'Committed', privacy_mode: 0 } as never).execute();
    onCommit(async () => {
      // The hook sees the committed row from another connection: the commit happened first.
      const row = await db.selectFrom('users').select('display_name').where('id', '=', '01J00000000000000000000001').executeTakeFirst();
      seen.push(`hook saw ${row?.display_name ?? 'nothing'}`);
    });
    seen.push('work done');
  });
  t.same(seen, ['work done', 'hook saw Committed']);

  const rolledBack: string[] = [];
  await t.rejects(
    inTransaction(db, async (tx, onCommit) => {
      await tx.insertInto('users').values({ id: '01J00000000000000000000002', role: 'user', display_name: 'Doomed', privacy_mode: 0 } as never).execute();
      onCommit(() => {
        rolledBack.push('hook ran');
      });
      throw new Error('abort');
    }),
    /abort/,
  );
  t.same(rolledBack, [], 'no hook after a rollback');
  const doomed = await db.selectFrom('users').select('id').where('id', '=', '01J00000000000000000000002').executeTakeFirst();
  t.equal(doomed, undefined, 'the row was rolled back');
});

t.test('a failing hook is reported and does not undo the commit', async (t) => {
  const errors: unknown[] = [];
  const result = await inTransaction(
    db,
    async (tx, onCommit) => {
      await tx.insertInto('users').values({ id: '01J00000000000000000000003', role: 'user', display_name: 'Kept', privacy_mode: 0 } as never).execute();
      onCommit(() => {
        throw new Error('webhook down');
      });
      return 'ok';
    },
    (error) => errors.push(error),
  );
  t.equal(result, 'ok');
  t.match(errors, [/webhook down/]);
  t.ok(await db.selectFrom('users').select('id').where('id', '=', '01J00000000000000000000003').executeTakeFirst());
});
