export { attachSignaling, SIGNALING_PATHS, type SignalingDeps, type SignalingSfu } from './server.ts';
