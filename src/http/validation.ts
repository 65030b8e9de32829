import { TypeGuard, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { AppError } from '../shared/errors.ts';

export type Location = 'body' | 'query' | 'params';

export interface FieldError {
  in: Location;
  path: string;
  message: string;
}

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();
function checker(schema: TSchema): TypeCheck<TSchema> {
  let check = compiled.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    compiled.set(schema, check);
  }
  return check;
}

/** Compiles ahead of the first request so a bad schema fails at start-up, not under load. */
export function precompile(schema: TSchema | undefined): void {
  if (schema) checker(schema);
}

export function validationError(errors: FieldError[], message = 'Request validation failed'): AppError {
  return new AppError('validation_failed', message, { errors });
}

/**
 * Validates `value` against `schema`. Query and path values arrive as strings, so they are
 * converted to the schema's types first; bodies are JSON and checked as they are.
 */
export function validate<T>(schema: TSchema, value: unknown, location: Location): T {
  let candidate = value;
  if (location !== 'body') candidate = Value.Convert(schema, candidate);
  candidate = Value.Default(schema, Value.Clone(candidate));
  const check = checker(schema);
  if (check.Check(candidate)) return candidate as T;
  throw validationError(fieldErrors(intendedVariant(schema, candidate), candidate, location));
}

/**
 * A union of object bodies (e.g. paid vs room initiate) reports the errors of the variant the caller
 * meant, the one whose required fields it sent most of, instead of "expected union value".
 */
function intendedVariant(schema: TSchema, value: unknown): TSchema {
  if (!TypeGuard.IsUnion(schema) || typeof value !== 'object' || value === null) return schema;
  const sent = new Set(Object.keys(value));
  let best: TSchema = schema;
  let bestScore = -1;
  for (const variant of schema.anyOf) {
    if (!TypeGuard.IsObject(variant)) return schema;
    const score = (variant.required ?? []).filter((name) => sent.has(name)).length;
    if (score > bestScore) [best, bestScore] = [variant, score];
  }
  return best;
}

function fieldErrors(schema: TSchema, candidate: unknown, location: Location): FieldError[] {
  const check = checker(schema);
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of check.Errors(candidate)) {
    const key = `${error.path}:${error.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    errors.push({ in: location, path: error.path || '/', message: error.message });
    if (errors.length >= 20) break;
  }
  return errors;
}
