/**
 * The WebSocket transport: one module for every socket kind (signaling, the user socket, chat
 * later). A socket kind is a SocketDeclaration plus its requests; see SocketEndpoint.
 */
export { SocketEndpoint, type EndpointDeps } from './endpoint.ts';
export { TokenBucket } from './token-bucket.ts';
export { TransportCloseCode, type FrameProtocol, type Refusal, type RequestId, type Socket, type SocketDeclaration, type SocketLimits } from './types.ts';
