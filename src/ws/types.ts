import type { TSchema } from '@sinclair/typebox';
import type { AppError } from '../shared/errors.ts';

/** Close codes every socket kind shares (standard WebSocket codes); protocols add their 4xxx codes. */
export const TransportCloseCode = {
  goingAway: 1001,
  /** A frame above the hard limit (SocketLimits.maxFrameBytes): uWS drops the connection itself (the client sees 1006). */
  messageTooBig: 1009,
  internalError: 1011,
  /** The client does not read what the server sends (more than maxBufferedBytes unread): reconnect. */
  slowConsumer: 1013,
} as const;

/** What a request or error is answered with: the id the client chose. */
export type RequestId = string | number;

/** A refused token: the socket is accepted and closed at once with this (browsers cannot read a refused upgrade's status). */
export interface Refusal {
  code: number;
  reason: string;
}

export interface SocketLimits {
  /** Frames above this get a payload_too_large error frame; the socket stays open. */
  maxMessageBytes: number;
  /**
   * uWS closes the connection on a frame above this without telling the app (1009 on the wire, 1006
   * at most clients), so it sits well above maxMessageBytes. Default 1 MiB.
   */
  maxFrameBytes?: number;
  /** The token bucket: this many frames per second, `burst` (default 2 × rate) at once. */
  messagesPerSecond: number;
  burst?: number;
  /** The code a socket that empties its bucket is closed with. */
  floodCloseCode: number;
  /** Unread server frames above this close the socket with 1013. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Default 60; uWS pings automatically before it. */
  idleTimeoutSeconds?: number;
  /** Request payloads nested deeper than this are refused before their schema walks them. Default 32. */
  maxDepth?: number;
}

/** How a protocol's frames look on the wire: the module knows no protocol of its own. */
export interface FrameProtocol {
  /** Schema of every client frame (the envelope around a request's payload). */
  envelope: TSchema;
  /** The request a parsed frame names, read from any JSON value (valid or not; undefined if none). */
  requestName(frame: unknown): string | undefined;
  /** The id to answer with, read from any JSON value (undefined: the error frame carries none). */
  requestId(frame: unknown): RequestId | undefined;
  /** The request's payload, from a frame that passed `envelope`. */
  payload(frame: unknown): unknown;
  /** The answer to a request; null sends none (a protocol whose requests are answered by events, as chat's). */
  reply(id: RequestId | undefined, result: unknown): object | null;
  /** The error frame for an AppError (the only kind of error a client sees). */
  error(id: RequestId | undefined, error: AppError): object;
  /** The error for a frame naming no registered request. */
  unknownRequest(name: string | undefined, known: readonly string[]): AppError;
}

/** One accepted, authenticated socket, as its declaration's hooks and handlers see it. */
export interface Socket<S> {
  /** What `authenticate` resolved. */
  readonly session: S;
  readonly ip: string;
  /** False once the socket closed (or is closing): sends are then dropped. */
  readonly isOpen: boolean;
  send(frame: object): void;
  /** An already serialised frame (one JSON.stringify for a fan-out). */
  sendText(text: string): void;
  /** Sends the protocol's error frame for `error` (mapped with toAppError). */
  sendError(error: unknown, id?: RequestId): void;
  close(code: number, reason: string): void;
}

/**
 * A socket kind: everything that differs between signaling, the user socket and the sockets to
 * come. The module does the rest (upgrade, limits, validation, errors, backpressure, metrics).
 */
export interface SocketDeclaration<S> {
  /** Metrics label and log field. */
  name: string;
  paths: readonly string[];
  /** Named in what a plain GET of a path is told: "connect with ws(s)://…<path>?token=<tokenName>". */
  tokenName: string;
  limits: SocketLimits;
  protocol: FrameProtocol;
  /** Checks the `?token=` of the URL (possibly empty). Throws (or rejects) to refuse the socket. */
  authenticate(token: string, ip: string): Promise<S>;
  /** The close code and reason for what `authenticate` threw. */
  refusal(error: unknown): Refusal;
  /** Series kept under the names they had before the socket label (e.g. callplane_signaling). */
  legacyMetricsPrefix?: string;
  /** The socket is authenticated: frames it sent meanwhile are handled right after this. */
  opened?(socket: Socket<S>): void;
  /** An authenticated socket closed (by either side). */
  closed?(socket: Socket<S>): void;
}
