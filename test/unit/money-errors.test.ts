import t from 'tap';
import { formatMoney, parseMoney } from '../../src/shared/money.ts';
import { AppError, toAppError } from '../../src/shared/errors.ts';

t.test('money round-trips between decimal strings and integer minor units', async (t) => {
  t.equal(parseMoney('2.00', 'rate'), 200);
  t.equal(parseMoney('2.5', 'rate'), 250);
  t.equal(parseMoney('0.07', 'rate'), 7);
  t.equal(parseMoney('72', 'rate'), 7200);
  t.equal(formatMoney(1600), '16.00');
  t.equal(formatMoney(5), '0.05');
  t.equal(formatMoney(parseMoney('1234.56', 'x')), '1234.56');
  for (const bad of ['-1.00', '1.234', 'abc', '01.00', '', '1e3']) {
    t.throws(() => parseMoney(bad, 'rate'), { code: 'validation_failed' }, `"${bad}" is refused`);
  }
  t.throws(() => formatMoney(1.5), /integer/);
});

t.test('AppError carries code and status; unknown errors become opaque 500s', async (t) => {
  const error = new AppError('rate_limited', 'slow down', { retry_after_seconds: 3 }, { 'Retry-After': '3' });
  t.equal(error.status, 429);
  t.same(error.toBody(), { error: { code: 'rate_limited', message: 'slow down', details: { retry_after_seconds: 3 } } });
  const opaque = toAppError(new Error('database password is hunter2'));
  t.equal(opaque.status, 500);
  t.notMatch(opaque.message, /hunter2/, 'internals do not leak');
});
