/** Checking client frames: TypeBox schemas compiled once, first-error messages, a nesting bound. */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';

export type FrameCheck = TypeCheck<TSchema>;

/** Compiles a schema once; checks then cost no schema walk per frame. */
export function compileFrame(schema: TSchema): FrameCheck {
  return TypeCompiler.Compile(schema);
}

/** "<what><path>: <message>" for the first violation: enough for a client to find its mistake. */
export function firstError(check: FrameCheck, value: unknown, what: string): string {
  const error = check.Errors(value).First();
  return error ? `${what}${error.path || ''}: ${error.message}` : `${what} is invalid`;
}

/** Depth of nested objects/arrays above `max`, walked iteratively so junk cannot blow the stack. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > max) return true;
    if (node !== null && typeof node === 'object') {
      for (const child of Object.values(node)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
