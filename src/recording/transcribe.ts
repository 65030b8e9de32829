/**
 * The transcription engine (docs/recording.md, "Transcript"): any HTTP endpoint speaking the OpenAI
 * audio transcription API — POST multipart/form-data with `file` and `model` (and
 * `response_format=json`), bearer api_key, answer `{"text": "..."}`.
 */
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import type { RecordingConfig } from '../config/schema.ts';

export class TranscriptionError extends Error {
  constructor(
    message: string,
    /** Worth another attempt (network, 429, 5xx) or not (not configured, 4xx). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'TranscriptionError';
  }
}

export async function transcribe(settings: RecordingConfig['transcription'], audioFile: string, contentType = 'audio/mp4'): Promise<string> {
  if (!settings.url) throw new TranscriptionError('not_configured: recording.transcription.url is not set', false);
  const form = new FormData();
  form.append('file', new Blob([await openAsBlob(audioFile)], { type: contentType }), basename(audioFile));
  form.append('model', settings.model);
  form.append('response_format', 'json');
  let response: Response;
  try {
    response = await fetch(settings.url, {
      method: 'POST',
      headers: settings.api_key ? { authorization: `Bearer ${settings.api_key}` } : {},
      body: form,
      signal: AbortSignal.timeout(settings.timeout_ms),
    });
  } catch (error) {
    throw new TranscriptionError(`engine unreachable: ${(error as Error).message}`, true);
  }
  const text = await response.text();
  if (!response.ok) throw new TranscriptionError(`engine answered ${response.status}: ${text.slice(0, 200)}`, response.status === 429 || response.status >= 500);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new TranscriptionError('engine answered something that is not JSON', false);
  }
  const value = (body as { text?: unknown }).text;
  if (typeof value !== 'string') throw new TranscriptionError('engine answer has no text', false);
  return value;
}
