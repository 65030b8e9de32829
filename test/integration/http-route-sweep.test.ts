import t from 'tap';
import { TypeGuard, type TObject, type TSchema } from '@sinclair/typebox';
import { startTestServer } from '../helpers/server.ts';

// Every route the server registers, not a hand-kept list: a new endpoint is covered the day it lands.
const server = await startTestServer(t);
const login = await server.api('/v1/demo/login', { method: 'POST', body: { display_name: 'Sweeper' } });
const token: string = login.body.access_token;
const SOME_ULID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

const routes = server.http.routeDefinitions;
const pathOf = (template: string) => template.replace(/\{[a-z_]+\}/g, SOME_ULID);

/**
 * The object shapes a body schema accepts: the object itself, or each variant of a union of
 * objects (POST /v1/calls/initiate). None for any other shape: the sweep cannot read it.
 */
function objectVariants(schema: TSchema): TObject[] {
  if (TypeGuard.IsObject(schema)) return [schema];
  if (TypeGuard.IsUnion(schema) && schema.anyOf.every((variant) => TypeGuard.IsObject(variant))) return schema.anyOf as TObject[];
  return [];
}

t.test('every authenticated route refuses missing, forged and garbage credentials with 401', async (t) => {
  const authed = routes.filter((r) => r.auth !== 'none');
  t.ok(authed.length >= 20, `${authed.length} authenticated routes`);
  const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  for (const route of authed) {
    const init = { method: route.method.toUpperCase(), ...(route.body ? { body: {} } : {}) };
    const missing = await server.api(pathOf(route.path), init);
    t.equal(missing.status, 401, `${route.method} ${route.path} without credentials`);
    t.equal(missing.body?.error?.code, 'unauthorized');
    t.equal((await server.api(pathOf(route.path), { ...init, token: forged })).status, 401, `${route.method} ${route.path} with a forged signature`);
    t.equal((await server.api(pathOf(route.path), { ...init, token: 'garbage' })).status, 401, `${route.method} ${route.path} with garbage`);
  }
});

t.test('every route with a body answers 400 validation_failed to malformed JSON, unknown fields and wrong types', async (t) => {
  const withBody = routes.filter((r) => r.body);
  t.ok(withBody.length >= 8, `${withBody.length} routes with a body`);
  for (const route of withBody) {
    const auth = route.auth === 'admin' ? { apiKey: true } : { token };
    const method = route.method.toUpperCase();
    const malformed = await server.api(pathOf(route.path), { method, ...auth, rawBody: '{"x": ' });
    t.equal(malformed.status, 400, `${method} ${route.path}: malformed JSON`);
    t.equal(malformed.body.error.code, 'validation_failed');
    t.ok(Array.isArray(malformed.body.error.details.errors), 'details list the errors');

    const unknown = await server.api(pathOf(route.path), { method, ...auth, body: { surely_not_a_field: 1 } });
    t.equal(unknown.status, 400, `${method} ${route.path}: unknown field`);
    t.ok(unknown.body.error.details.errors.some((e: { path: string }) => e.path === '/surely_not_a_field'), 'the unknown field is named');

    // Wrong types: every declared property gets a value of a type no schema here accepts. A union
    // is swept one variant at a time (the server reports the variant whose fields were sent).
    const variants = objectVariants(route.body!);
    const shapes = variants.map((variant) => Object.keys(variant.properties));
    // A body shape the sweep cannot read would otherwise pass with nothing checked.
    t.ok(shapes.length > 0 && shapes.every((names) => names.length > 0), `${method} ${route.path}: the sweep finds the body's properties (${shapes.map((names) => names.join(', ')).join(' | ') || 'none'})`);
    for (const properties of shapes) {
      const label = variants.length > 1 ? `${method} ${route.path} {${properties.join(', ')}}` : `${method} ${route.path}`;
      const wrong = Object.fromEntries(properties.map((name) => [name, { nested: [true] }]));
      const typed = await server.api(pathOf(route.path), { method, ...auth, body: wrong });
      t.equal(typed.status, 400, `${label}: wrong types`);
      t.equal(typed.body?.error?.code, 'validation_failed', `${label}: wrong types are validation_failed`);
      for (const name of properties) {
        t.ok(typed.body?.error?.details?.errors?.some((e: { path: string }) => e.path.startsWith(`/${name}`)), `${label}: /${name} is named`);
      }
    }
  }
});
