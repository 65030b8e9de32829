import { Type } from '@sinclair/typebox';
import { RecordingSchema } from '../../recording/dto.ts';
import { StartRecordingBody, type RecordingService } from '../../recording/service.ts';
import { ListEnvelope, PageQuery, Strict, Ulid, paginate } from '../../shared/schema.ts';
import { defineRoute, ok, type AnyRoute } from '../types.ts';
import { actorOf } from './calls.ts';

const CallIdParams = Strict({ id: Ulid });
const RecordingEnvelope = Type.Object({ recording: RecordingSchema });

/** Recording a call (docs/api.md, "Recording"). */
export function recordingRoutes(deps: { recordings: RecordingService }): AnyRoute[] {
  const { recordings } = deps;
  return [
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/recording/start', summary: 'Start recording the call (power 100 in the room, or an admin)', tags: ['recordings'], auth: 'user',
      params: CallIdParams, body: StartRecordingBody,
      responses: {
        201: { description: 'Recording', schema: RecordingEnvelope },
        403: { description: 'forbidden (not power 100 / admin), recording_disabled (the tenant switch is off)' },
        409: { description: 'invalid_state: a recording is running or the call is not live' },
        503: { description: 'service_unavailable: the recording spool is full' },
      },
      handler: async ({ principal, params, body }) => ok({ recording: await recordings.start(actorOf(principal), params.id, body) }, 201),
    }),
    defineRoute({
      method: 'post', path: '/v1/calls/{id}/recording/stop', summary: 'Stop the running recording; composition follows in the background', tags: ['recordings'], auth: 'user',
      params: CallIdParams,
      responses: { 200: { description: 'Processing', schema: RecordingEnvelope }, 409: { description: 'invalid_state: no recording is running' } },
      handler: async ({ principal, params }) => ok({ recording: await recordings.stop(actorOf(principal), params.id) }),
    }),
    defineRoute({
      method: 'get', path: '/v1/calls/{id}/recordings', summary: 'The call\'s recordings, with signed download URLs once ready', tags: ['recordings'], auth: 'user',
      params: CallIdParams, query: Strict({ ...PageQuery }),
      responses: { 200: { description: 'A page of recordings', schema: ListEnvelope(RecordingSchema) } },
      handler: async ({ principal, params, query }) => {
        const page = query.page ?? 1;
        const perPage = query.per_page ?? 20;
        const { rows, total } = await recordings.list(actorOf(principal), params.id, page, perPage);
        return ok(paginate(rows, page, perPage, total));
      },
    }),
  ];
}
