/** What the recording domain needs from below, as interfaces (docs/recording.md). */
import { taskKind } from '../jobs/queue.ts';

/** A recording as the capture sees it. */
export interface CaptureTarget {
  recordingId: string;
  callId: string;
  audio: boolean;
  video: boolean;
  startedAt: Date;
}

/** The live capture of recordings (capture.ts, on the SFU's media tap). */
export interface RecordingCapturePort {
  /** Starts capturing every producer of the call that the recording asked for (and those that appear later). */
  start(target: CaptureTarget): void;
  /** Stops the recording's ffmpeg processes cleanly (their files finalised) and closes its taps. */
  stop(recordingId: string): Promise<void>;
  /** Resolves once the recording's capture in this process has ended (at once when there is none). */
  settled(recordingId: string): Promise<void>;
}

export interface RecordingJob {
  recording_id: string;
  /** Transcription: the attempt this job is (1 when absent). */
  attempt?: number;
}

/** Composition of the raw tracks into the MP4 (after stop). */
export const RECORDING_COMPOSE = taskKind<RecordingJob>('recording_compose');
/** The transcript of the mixed audio (after composition, when asked for). */
export const RECORDING_TRANSCRIBE = taskKind<RecordingJob>('recording_transcribe');
/** Upload of the composed file and the raw tracks from the spool; retried while storage is down. */
export const RECORDING_UPLOAD = taskKind<RecordingJob>('recording_upload');
