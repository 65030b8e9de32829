import { AppError } from './errors.ts';

/** Money is integer minor units inside; the API speaks decimal strings with two places ("2.00"). */
const DECIMAL = /^(0|[1-9]\d{0,9})(\.\d{1,2})?$/;

export function parseMoney(value: string, field: string): number {
  if (!DECIMAL.test(value)) {
    throw new AppError('validation_failed', `${field} must be a non-negative decimal with at most two places, e.g. "2.00"`, {
      errors: [{ in: 'body', path: `/${field}`, message: 'expected a decimal string like "2.00"' }],
    });
  }
  const [whole, fraction = ''] = value.split('.');
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
}

export function formatMoney(minor: number): string {
  if (!Number.isSafeInteger(minor)) throw new Error(`money must be an integer number of minor units (got ${minor})`);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

export const CURRENCY_PATTERN = '^[a-z]{3}$';
