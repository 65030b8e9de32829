/**
 * The import direction of src/ (docs/architecture.md) is enforced by `npm run lint`: these run the
 * project's own ESLint config on code placed in each layer and check that wrong-way imports fail.
 */
import t from 'tap';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: process.cwd() });

async function importErrors(filePath: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import type { X } from '${specifier}';\nexport type Y = X;\n`, { filePath });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const WRONG_WAY: Array<[file: string, specifier: string]> = [
  ['src/calls/x.ts', '../http/types.ts'],
  ['src/billing/providers/x.ts', '../../signaling/server.ts'],
  ['src/calls/x.ts', '../context.ts'],
  ['src/identity/x.ts', '../realtime/user-socket.ts'],
  ['src/sfu/x.ts', '../calls/ports.ts'],
  ['src/db/x.ts', '../billing/model.ts'],
  ['src/shared/x.ts', '../db/database.ts'],
  ['src/media/x.ts', '../calls/ports.ts'],
  ['src/http/routes/x.ts', '../../main.ts'],
  ['src/signaling/x.ts', '../cli/index.ts'],
  ['src/web/x.ts', '../calls/call-dto.ts'],
];
const RIGHT_WAY: Array<[file: string, specifier: string]> = [
  ['src/calls/x.ts', '../sfu/types.ts'],
  ['src/calls/x.ts', '../billing/model.ts'],
  ['src/billing/x.ts', '../jobs/index.ts'],
  ['src/http/routes/x.ts', '../../calls/ports.ts'],
  ['src/http/routes/x.ts', '../server.ts'],
  ['src/signaling/x.ts', '../http/types.ts'],
  ['src/context.ts', './http/server.ts'],
  ['src/web/x.ts', '../protocol/signaling.ts'],
  ['src/billing/providers/x.ts', '../idempotency.ts'],
];

t.test('a wrong-way import fails the lint', async (t) => {
  for (const [file, specifier] of WRONG_WAY) {
    const errors = await importErrors(file, specifier);
    t.equal(errors.length, 1, `${file} importing ${specifier} is refused`);
    t.match(errors[0] ?? '', /docs\/architecture\.md/, 'the message points at the layers');
  }
});

t.test('imports along the layers pass', async (t) => {
  for (const [file, specifier] of RIGHT_WAY) t.same(await importErrors(file, specifier), [], `${file} may import ${specifier}`);
});
