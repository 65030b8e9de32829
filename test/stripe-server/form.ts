/**
 * Stripe's request encoding: `application/x-www-form-urlencoded` with bracket nesting, as the official SDK
 * writes it (qs, `arrayFormat: 'indices'`, literal brackets): `metadata[call_id]=c1`,
 * `transfer_data[destination]=acct_1`, `payment_method_types[0]=card`. Every leaf stays a string, as on
 * the wire; the endpoints coerce (`amount` → integer, `confirm` → boolean).
 */

export type FormValue = string | FormValue[] | FormObject;
export interface FormObject {
  [key: string]: FormValue;
}

export class FormError extends Error {}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Splits `a[b][c]` into `['a', 'b', 'c']`; `a[]` gives an empty segment (append). */
function segments(key: string): string[] {
  const open = key.indexOf('[');
  if (open === -1) return [key];
  const parts = [key.slice(0, open)];
  const rest = key.slice(open);
  const re = /\[([^[\]]*)\]/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(rest)) !== null) {
    parts.push(m[1] ?? '');
    consumed = re.lastIndex;
  }
  if (consumed !== rest.length) throw new FormError(`Invalid parameter name: ${key}`);
  return parts;
}

/** Objects whose keys are all array indices become arrays, ordered by index. */
function arrays(value: FormValue): FormValue {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(arrays);
  const keys = Object.keys(value);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => arrays(value[k] as FormValue));
  }
  const out: FormObject = {};
  for (const k of keys) out[k] = arrays(value[k] as FormValue);
  return out;
}

export function parseForm(body: string): FormObject {
  const root: FormObject = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const path = segments(key);
    if (path.some((p) => FORBIDDEN.has(p)) || path[0] === '') throw new FormError(`Invalid parameter name: ${key}`);
    let node: FormObject = root;
    for (let i = 0; i < path.length - 1; i += 1) {
      const name = path[i] as string;
      const next = node[name];
      if (next === undefined) {
        const created: FormObject = {};
        node[name] = created;
        node = created;
      } else if (typeof next === 'object' && !Array.isArray(next)) {
        node = next;
      } else {
        throw new FormError(`Invalid parameter: ${key} mixes a value and a hash`);
      }
    }
    let leaf = path[path.length - 1] as string;
    if (leaf === '') leaf = String(Object.keys(node).length); // `a[]=x` appends
    if (node[leaf] !== undefined) throw new FormError(`Invalid parameter: ${key} given twice`);
    node[leaf] = value;
  }
  return arrays(root) as FormObject;
}

/** A stable text of parameters (keys sorted at every level): the idempotency fingerprint compares these. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
