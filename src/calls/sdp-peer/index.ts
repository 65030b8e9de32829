export { SdpPeer, type SdpPeerOutput } from './sdp-peer.ts';
