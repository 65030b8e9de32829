export {
  attachSignaling,
  MAX_BUFFERED_BYTES,
  SIGNAL_FRAME_HARD_LIMIT,
  SIGNALING_PATHS,
  TransportCloseCode,
  type SignalingDeps,
  type SignalingSfu,
} from './server.ts';
export { createSignalingMetrics, type SignalingMetrics } from './metrics.ts';
export { TokenBucket } from './token-bucket.ts';
