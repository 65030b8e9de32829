/** Stripe-looking object ids: a prefix and random alphanumerics (`pi_3Qx…`, `cus_R2…`, `pm_1P…`). */
import { randomBytes } from 'node:crypto';

export const randomId = (prefix: string, n = 24): string =>
  `${prefix}_${randomBytes(n).toString('base64url').replace(/[-_]/g, '').slice(0, n).padEnd(n, '0')}`;
