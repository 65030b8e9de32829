/** Coercion and checks of form parameters, with Stripe's wording for what is wrong. */
import type { FormObject, FormValue } from './form.ts';
import { invalidInteger, invalidRequest, missingParameter, unknownParameter } from './errors.ts';

export function allowOnly(params: FormObject, allowed: readonly string[]): void {
  for (const key of Object.keys(params)) if (!allowed.includes(key)) throw unknownParameter(key);
}

export function str(params: FormObject, name: string, required: true): string;
export function str(params: FormObject, name: string, required?: false): string | undefined;
export function str(params: FormObject, name: string, required = false): string | undefined {
  const v = params[name];
  if (v === undefined || v === '') {
    if (required) throw missingParameter(name);
    return undefined;
  }
  if (typeof v !== 'string') throw invalidRequest(`Invalid string: ${name} must be a string`, { param: name });
  return v;
}

export function int(params: FormObject, name: string, required: true): number;
export function int(params: FormObject, name: string, required?: false): number | undefined;
export function int(params: FormObject, name: string, required = false): number | undefined {
  const v = str(params, name, required as false);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalidInteger(name, v);
  return Number(v);
}

export function bool(params: FormObject, name: string): boolean | undefined {
  const v = str(params, name);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw invalidRequest(`Invalid boolean: ${v}`, { param: name });
  return v === 'true';
}

export function oneOf<T extends string>(params: FormObject, name: string, values: readonly T[]): T | undefined {
  const v = str(params, name);
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw invalidRequest(`Invalid ${name}: must be one of ${values.join(', ')}`, { param: name });
  }
  return v as T;
}

export function hash(params: FormObject, name: string, allowed?: readonly string[]): FormObject | undefined {
  const v: FormValue | undefined = params[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidRequest(`Invalid object`, { param: name });
  if (allowed) {
    for (const key of Object.keys(v)) if (!allowed.includes(key)) throw unknownParameter(`${name}[${key}]`);
  }
  return v;
}

export function stringList(params: FormObject, name: string): string[] | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalidRequest('Invalid array', { param: name });
  return v as string[];
}

/** Stripe's metadata rules: up to 50 keys, keys ≤ 40 characters, values ≤ 500 characters, strings only. */
export function metadata(params: FormObject, name = 'metadata'): Record<string, string> | undefined {
  const m = hash(params, name);
  if (m === undefined) return undefined;
  const keys = Object.keys(m);
  if (keys.length > 50) throw invalidRequest('Invalid metadata: at most 50 keys', { param: name });
  const out: Record<string, string> = {};
  for (const key of keys) {
    const value = m[key];
    if (typeof value !== 'string') throw invalidRequest(`Invalid metadata value for ${key}`, { param: `${name}[${key}]` });
    if (key.length > 40) throw invalidRequest('Metadata keys can have up to 40 characters', { param: `${name}[${key}]` });
    if (value.length > 500) throw invalidRequest('Metadata values can have up to 500 characters', { param: `${name}[${key}]` });
    out[key] = value;
  }
  return out;
}
