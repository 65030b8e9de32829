import { FormatRegistry, Type, type TObject, type TProperties, type TSchema } from '@sinclair/typebox';

// TypeBox checks no string formats until they are registered; these are the ones the API uses.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));
if (!FormatRegistry.Has('uri')) {
  FormatRegistry.Set('uri', (v) => {
    try {
      return Boolean(new URL(v).protocol);
    } catch {
      return false;
    }
  });
}
if (!FormatRegistry.Has('email')) FormatRegistry.Set('email', (v) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v));

/** An object schema that rejects unknown fields: every request body and query uses it. */
export function Strict<T extends TProperties>(properties: T, options: { description?: string; title?: string } = {}): TObject<T> {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

export const Ulid = Type.String({ pattern: '^[0-9A-HJKMNP-TV-Z]{26}$', description: 'ULID' });
export const DateTime = Type.String({ format: 'date-time' });

export const ErrorEnvelope = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'snake_case error code' }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { title: 'Error' },
);

export const Pagination = Type.Object({
  page: Type.Integer({ minimum: 1 }),
  per_page: Type.Integer({ minimum: 1, maximum: 100 }),
  total: Type.Integer({ minimum: 0 }),
  total_pages: Type.Integer({ minimum: 0 }),
});

export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
};

export function ListEnvelope(item: TSchema): TSchema {
  return Type.Object({ success: Type.Literal(true), data: Type.Array(item), pagination: Pagination });
}

export function paginate<T>(data: T[], page: number, perPage: number, total: number) {
  return { success: true as const, data, pagination: { page, per_page: perPage, total, total_pages: Math.ceil(total / perPage) } };
}
