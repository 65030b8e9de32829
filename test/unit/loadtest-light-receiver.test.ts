/**
 * The load tester's light receive path (src/loadtest/light-receiver.ts, docs/loadtest.md
 * "Receivers"): RTP headers read from SRTP packets without decrypting them (CSRCs, header
 * extension), routing by SSRC with loss across the sequence wrap, RTCP and non-RTP ignored, sizes
 * equal to what werift's full path counts, and the hook on werift's DTLS transport.
 */
import t from 'tap';
import { RtpHeader, RtpPacket, SrtpSession } from 'msc-node';
import { attachLightReceiver, authTagBytes, isRtcpPacket, LightRtpDemux, parseRtpHeader } from '../../src/loadtest/light-receiver.ts';
import { RtpTrackCounter } from '../../src/loadtest/track-stats.ts';

const VIDEO_CLOCK = 90_000;
const TAG_80 = 10;

/** An RTP packet as the wire carries it: header (CSRCs, extension words), `payloadBytes` of payload, then an SRTP tag. */
function rtp(options: { ssrc: number; seq: number; ts?: number; csrcs?: number[]; extensionWords?: number; payloadBytes?: number; tagBytes?: number }): Buffer {
  const csrcs = options.csrcs ?? [];
  const extensionWords = options.extensionWords;
  const header = Buffer.alloc(12 + 4 * csrcs.length + (extensionWords === undefined ? 0 : 4 + 4 * extensionWords));
  header[0] = 0x80 | (extensionWords === undefined ? 0 : 0x10) | csrcs.length;
  header[1] = 96;
  header.writeUInt16BE(options.seq, 2);
  header.writeUInt32BE(options.ts ?? options.seq * 3000, 4);
  header.writeUInt32BE(options.ssrc, 8);
  csrcs.forEach((csrc, i) => header.writeUInt32BE(csrc, 12 + 4 * i));
  if (extensionWords !== undefined) {
    const at = 12 + 4 * csrcs.length;
    header.writeUInt16BE(0xbede, at);
    header.writeUInt16BE(extensionWords, at + 2);
    header.fill(0x42, at + 4);
  }
  return Buffer.concat([header, Buffer.alloc(options.payloadBytes ?? 100, 0xaa), Buffer.alloc(options.tagBytes ?? TAG_80, 0xee)]);
}

t.test('an RTP header with CSRCs and a header extension', async (t) => {
  const packet = rtp({ ssrc: 0x11223344, seq: 65535, ts: 0xfffffff0, csrcs: [7, 8], extensionWords: 2, payloadBytes: 100 });
  t.same(parseRtpHeader(packet), { ssrc: 0x11223344, sequenceNumber: 65535, timestamp: 0xfffffff0, headerLength: 12 + 8 + 4 + 8 });
  t.same(parseRtpHeader(rtp({ ssrc: 5, seq: 1 })), { ssrc: 5, sequenceNumber: 1, timestamp: 3000, headerLength: 12 });

  const demux = new LightRtpDemux();
  const counter = new RtpTrackCounter('video', VIDEO_CLOCK);
  demux.addTrack(0x11223344, counter);
  demux.onPacket(packet, 0);
  t.equal(counter.snapshot().bytes, 100 + 12, 'counted as payload + 12: CSRCs, extension and SRTP tag left out');
});

t.test('loss across the sequence number wrap, by SSRC', async (t) => {
  const demux = new LightRtpDemux();
  const video = new RtpTrackCounter('video', VIDEO_CLOCK);
  const audio = new RtpTrackCounter('audio', 48_000);
  demux.addTrack(1111, video, 1112);
  demux.addTrack(2222, audio);
  // Video 65532 … 65535, 0 … 3 with 65535 and 2 missing; audio 10 … 14 complete, interleaved.
  const videoSeqs = [65532, 65533, 65534, 0, 1, 3];
  videoSeqs.forEach((seq, i) => {
    demux.onPacket(rtp({ ssrc: 1111, seq, extensionWords: 1 }), i * 33);
    demux.onPacket(rtp({ ssrc: 2222, seq: 10 + i, ts: i * 960, payloadBytes: 60 }), i * 20);
  });
  demux.onPacket(rtp({ ssrc: 1112, seq: 9 }), 300); // a retransmission: not counted to the track
  demux.onPacket(rtp({ ssrc: 3333, seq: 9 }), 300); // no consumer has it (mediasoup's probation SSRC, say)
  t.match(video.snapshot(), { packets: 6, expected: 8, lost: 2, bytes: 6 * 112 });
  t.match(audio.snapshot(), { packets: 6, expected: 6, lost: 0, bytes: 6 * 72 });
  t.same(demux.ignored, { rtcp: 0, rtx: 1, unknownSsrc: 1, notRtp: 0 });
});

t.test('RTCP, STUN, DTLS and truncated packets are ignored', async (t) => {
  const demux = new LightRtpDemux();
  const counter = new RtpTrackCounter('video', VIDEO_CLOCK);
  demux.addTrack(0xaabbccdd, counter);
  // An SRTCP receiver report and a sender report (RFC 5761 packet types) whose sender SSRC is the track's.
  for (const type of [201, 200]) {
    const rtcp = Buffer.alloc(8 + 4 + TAG_80);
    rtcp[0] = 0x80;
    rtcp[1] = type;
    rtcp.writeUInt32BE(0xaabbccdd, 4);
    t.ok(isRtcpPacket(rtcp), `packet type ${type} is RTCP`);
    t.equal(parseRtpHeader(rtcp), null);
    demux.onPacket(rtcp, 0);
  }
  const stun = Buffer.alloc(20); // binding request: first byte 0
  stun.writeUInt16BE(0x0001, 0);
  const dtls = Buffer.from([22, 0xfe, 0xfd, ...Buffer.alloc(20)]); // a DTLS handshake record
  const truncated = rtp({ ssrc: 0xaabbccdd, seq: 1 }).subarray(0, 11);
  const badExtension = rtp({ ssrc: 0xaabbccdd, seq: 1, extensionWords: 1, payloadBytes: 0, tagBytes: 0 });
  badExtension.writeUInt16BE(50, 14); // claims 200 bytes of extension in a 20-byte packet
  const version1 = rtp({ ssrc: 0xaabbccdd, seq: 1 });
  version1[0] = 0x40;
  for (const packet of [stun, dtls, truncated, badExtension, version1]) {
    t.equal(parseRtpHeader(packet), null);
    demux.onPacket(packet, 0);
  }
  t.same(demux.ignored, { rtcp: 2, rtx: 0, unknownSsrc: 0, notRtp: 5 });
  t.equal(counter.snapshot().packets, 0, 'nothing reached the track');
});

t.test("sizes equal werift's full path (decrypt, RtpPacket) for both SRTP profiles", async (t) => {
  const key = Buffer.alloc(16, 1);
  for (const [profile, saltBytes] of [
    [0x0001, 14],
    [0x0007, 12],
  ] as const) {
    const salt = Buffer.alloc(saltBytes, 2);
    const session = new SrtpSession({ keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: key, remoteMasterSalt: salt }, profile } as ConstructorParameters<typeof SrtpSession>[0]);
    const header = new RtpHeader({
      payloadType: 96,
      sequenceNumber: 4242,
      timestamp: 987654,
      ssrc: 0x01020304,
      csrc: [1, 2, 3],
      csrcLength: 3,
      extension: true,
      extensionProfile: 0xbede,
      extensions: [
        { id: 1, payload: Buffer.from([5]) },
        { id: 4, payload: Buffer.from([1, 2, 3]) },
      ],
    });
    const encrypted = session.encrypt(Buffer.alloc(321, 9), header);
    const full = RtpPacket.deSerialize(session.decrypt(encrypted));

    const demux = new LightRtpDemux();
    demux.authTagBytes = authTagBytes(profile);
    const counter = new RtpTrackCounter('video', VIDEO_CLOCK);
    demux.addTrack(0x01020304, counter);
    demux.onPacket(encrypted, 0);
    t.equal(parseRtpHeader(encrypted)?.sequenceNumber, full.header.sequenceNumber, `profile ${profile}: same sequence number`);
    t.equal(parseRtpHeader(encrypted)?.timestamp, full.header.timestamp, `profile ${profile}: same timestamp`);
    t.equal(counter.snapshot().bytes, full.payload.length + 12, `profile ${profile}: same size as the full path counts`);
  }
  t.throws(() => authTagBytes(0x0002), /unknown SRTP protection profile 0x2/);
});

t.test("the hook replaces werift's startSrtp on the connection's DTLS transports", async (t) => {
  const listeners: Array<(data: Buffer) => void> = [];
  const makeDtls = () => ({
    srtpStarted: false,
    sessions: 0,
    startSrtp() {
      throw new Error("werift's own receive path ran");
    },
    updateSrtpSession() {
      this.sessions += 1;
    },
    dtls: { srtp: { srtpProfile: 0x0007 } },
    iceTransport: { connection: { onData: { subscribe: (listener: (data: Buffer) => void) => listeners.push(listener) } } },
  });
  const dtls = makeDtls();
  const pc = { dtlsTransports: [] as unknown[], createTransport: () => dtls };
  const demux = attachLightReceiver(pc);
  const created = pc.createTransport();
  t.equal(pc.createTransport(), created, 'a bundled transport asked for again is hooked once');
  const counter = new RtpTrackCounter('audio', 48_000);
  demux.addTrack(77, counter);

  created.startSrtp(); // what werift calls when DTLS completes
  created.startSrtp();
  t.equal(listeners.length, 1, 'one handler on the ICE connection');
  t.ok(created.srtpStarted);
  t.equal(created.sessions, 1, 'the SRTP/SRTCP sessions are still set up (werift sends RTCP on them)');
  t.equal(demux.authTagBytes, 16, 'the tag size follows the negotiated profile (AEAD_AES_128_GCM)');
  listeners[0]!(rtp({ ssrc: 77, seq: 1, payloadBytes: 80, tagBytes: 16 }));
  t.match(counter.snapshot(), { packets: 1, bytes: 92 });

  const started = { ...makeDtls(), srtpStarted: true };
  t.throws(() => attachLightReceiver({ dtlsTransports: [started], createTransport: () => started }), /SRTP already started/, 'too late to hook');
  t.throws(() => attachLightReceiver({}), /not a werift RTCPeerConnection/);
});
