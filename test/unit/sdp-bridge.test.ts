/**
 * The SDP bridge on real Chrome offers (test/fixtures/sdp/) and a real mediasoup router: what it
 * reads from an offer is accepted by transport.produce() and router.canConsume(); the answers it
 * writes say what the server does per m-line; and what it cannot take is refused naming the m-line.
 */
import t, { type Test } from 'tap';
import * as sdpTransform from 'sdp-transform';
import { WorkerPool } from '../../src/media/worker-pool.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { AppError } from '../../src/shared/errors.ts';
import { buildAnswer, buildOffer, connectParameters, parseOffer, rejectedSection, sendableInAnswer, serverDtlsRole, type SectionPlan } from '../../src/sfu/sdp/index.ts';
import { chromeOffer, mutate } from '../helpers/sdp-fuzz.ts';
import { prng } from '../helpers/prng.ts';
import { freePortBase } from '../helpers/ports.ts';

const pool = await WorkerPool.create(
  { workers: 1, port_base: await freePortBase(1), listen_ip: '127.0.0.1', announced_address: null, max_consumers_per_worker: 500, key_frame_request_delay_ms: 310, worker_log_level: 'error', worker_bin: null },
  { logger: silentLogger() },
);
t.teardown(() => pool.close());
const router = await pool.createRouter();
const caps = router.rtpCapabilities;
const newTransport = () => router.router.createWebRtcTransport({ webRtcServer: router.webRtcServer });

const sendrecv = chromeOffer('chrome-sendrecv');
const simulcast = chromeOffer('chrome-simulcast-recvonly-data');

function refused(t: Test, sdp: unknown, pattern: RegExp, what: string): void {
  try {
    parseOffer(sdp, caps);
    t.fail(`${what}: accepted`);
  } catch (error) {
    t.ok(error instanceof AppError && error.code === 'validation_failed', `${what}: validation_failed`);
    t.match((error as Error).message, pattern, `${what}: says why`);
  }
}

t.test('a Chrome sendrecv offer becomes producers the router accepts and capabilities it can consume to', async (t) => {
  const offer = parseOffer(sendrecv, caps);
  t.match(offer.dtlsParameters, { role: 'auto', fingerprints: [{ algorithm: 'sha-256', value: /^93:68:E5/ }] });
  t.equal(serverDtlsRole(offer), 'server', 'actpass: the server answers passive');
  t.equal(connectParameters(offer).role, 'client', 'and mediasoup is told the client is the DTLS client');
  const [audio, video] = offer.media;
  t.match(audio, { mid: '0', kind: 'audio', direction: 'sendrecv', rejected: false, msid: { streamId: 'c5d857f4-a6d7-4b65-b7b7-f703bb0a69ed' } });
  t.match(audio!.rtpParameters, { mid: '0', codecs: [{ mimeType: 'audio/opus', payloadType: 111, channels: 2, parameters: { useinbandfec: 1 } }], encodings: [{ ssrc: 3703608967 }], rtcp: { cname: 'kcyv9QgYEVvvGMYQ', reducedSize: true } });
  t.equal(audio!.rtpParameters!.codecs.length, 1, 'audio: one codec (no RTX offered for audio)');
  t.ok(audio!.rtpParameters!.headerExtensions!.some((e) => e.uri === 'urn:ietf:params:rtp-hdrext:ssrc-audio-level' && e.id === 1), 'audio level at the offered id');
  t.ok(audio!.rtpParameters!.headerExtensions!.some((e) => e.uri === 'urn:ietf:params:rtp-hdrext:sdes:mid' && e.id === 4), 'mid at the offered id');
  t.match(video!.rtpParameters, { codecs: [{ mimeType: 'video/VP8', payloadType: 96 }, { mimeType: 'video/rtx', payloadType: 97, parameters: { apt: 96 } }], encodings: [{ ssrc: 270310525, rtx: { ssrc: 2053415662 } }] });
  t.ok(video!.rtpParameters!.headerExtensions!.some((e) => e.uri.includes('transport-wide-cc') && e.id === 3), 'transport-cc at the offered id');
  t.same(video!.rtpParameters!.codecs[0]!.rtcpFeedback!.map((fb) => `${fb.type} ${fb.parameter ?? ''}`.trim()).sort(), ['ccm fir', 'goog-remb', 'nack', 'nack pli', 'transport-cc']);

  const h264 = video!.rtpCapabilities!.codecs!.filter((c) => c.mimeType === 'video/H264').map((c) => c.preferredPayloadType);
  t.same(h264.sort(), [108, 116], 'H.264: packetization-mode 1 in the router\'s profiles only (42e01f, 4d001f), not mode 0 nor Baseline 42001f');
  t.notOk(video!.rtpCapabilities!.codecs!.some((c) => c.mimeType === 'video/AV1'), 'AV1: the router has none');
  t.ok(video!.rtpCapabilities!.codecs!.some((c) => c.mimeType === 'video/rtx' && c.parameters!.apt === 98), 'VP9 comes with its RTX');

  const send = await newTransport();
  const recv = await newTransport();
  t.teardown(() => (send.close(), recv.close()));
  const audioProducer = await send.produce({ kind: 'audio', rtpParameters: audio!.rtpParameters! });
  const videoProducer = await send.produce({ kind: 'video', rtpParameters: video!.rtpParameters! });
  t.ok(router.router.canConsume({ producerId: videoProducer.id, rtpCapabilities: video!.rtpCapabilities! }), 'the client can consume VP8 on its video m-line');
  const consumer = await recv.consume({ producerId: videoProducer.id, rtpCapabilities: video!.rtpCapabilities!, mid: '1', paused: true });
  t.equal(consumer.rtpParameters.mid, '1', 'the consumer carries the client\'s mid');
  const vp8 = video!.rtpCapabilities!.codecs!.find((c) => c.mimeType === 'video/VP8')!;
  // Every codec the consumer sends (VP8 and its RTX) must have the client's payload type.
  const inClientsTypes = consumer.rtpParameters.codecs.every((c) => video!.rtpCapabilities!.codecs!.some((o) => o.preferredPayloadType === c.payloadType && o.mimeType.toLowerCase() === c.mimeType.toLowerCase()));
  t.equal(consumer.rtpParameters.codecs[0]!.payloadType, vp8.preferredPayloadType, 'VP8 has the payload type Chrome offers it with (src/media/codecs.ts)');
  t.equal(sendableInAnswer(consumer.rtpParameters, video!.rtpCapabilities), inClientsTypes, 'an answer may carry the consumer only in the client\'s payload types');
  t.ok(sendableInAnswer({ ...consumer.rtpParameters, codecs: [{ ...consumer.rtpParameters.codecs[0]!, payloadType: 96 }] }, video!.rtpCapabilities), 'VP8 at the client\'s 96 can');
  const plain = await recv.consume({ producerId: audioProducer.id, rtpCapabilities: audio!.rtpCapabilities!, mid: '0', paused: true, enableRtx: false });
  t.ok(sendableInAnswer(plain.rtpParameters, audio!.rtpCapabilities), 'a consumer in the client\'s payload types can');

  const answer = buildAnswer({
    transport: { iceParameters: send.iceParameters, iceCandidates: send.iceCandidates, dtlsParameters: send.dtlsParameters },
    dtlsRole: serverDtlsRole(offer),
    origin: { sessionId: '1234', version: 1 },
    sections: [
      { mid: '0', kind: 'audio', receive: audioProducer.rtpParameters },
      { mid: '1', kind: 'video', receive: video!.rtpParameters!, send: { rtpParameters: consumer.rtpParameters, streamId: 'peer-b', trackId: consumer.id } },
    ],
  });
  const parsed = sdpTransform.parse(answer);
  t.equal(parsed.icelite, 'ice-lite');
  t.same(parsed.groups, [{ type: 'BUNDLE', mids: '0 1' }]);
  t.same(parsed.media.map((m) => [m.mid, m.direction, m.setup]), [['0', 'recvonly', 'passive'], ['1', 'sendrecv', 'passive']]);
  t.equal(parsed.media[0]!.iceUfrag, send.iceParameters.usernameFragment);
  t.equal(parsed.media[0]!.candidates!.length, send.iceCandidates.length, 'the server\'s candidates in the SDP');
  t.same(parsed.media[1]!.msid, [{ id: 'peer-b', appdata: consumer.id }]);
  t.same(parsed.media[1]!.ssrcGroups, [{ semantics: 'FID', ssrcs: `${consumer.rtpParameters.encodings![0]!.ssrc} ${consumer.rtpParameters.encodings![0]!.rtx!.ssrc}` }]);
  t.equal(parsed.media[0]!.fingerprint!.hash, send.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256')!.value);
});

t.test('simulcast, a recvonly m-line and a data channel', async (t) => {
  const offer = parseOffer(simulcast, caps);
  t.same(offer.media.map((m) => [m.mid, m.kind, m.direction, m.rejected]), [['0', 'audio', 'sendrecv', false], ['1', 'video', 'sendonly', false], ['2', 'video', 'recvonly', false], ['3', 'application', 'sendrecv', true]]);
  t.same(offer.media[1]!.rtpParameters!.encodings, [{ rid: 'q' }, { rid: 'h' }, { rid: 'f' }], 'one encoding per rid, in the a=simulcast order');
  t.notOk(offer.media[2]!.rtpParameters, 'nothing to produce from a recvonly m-line');
  t.ok(offer.media[2]!.rtpCapabilities!.codecs!.some((c) => c.mimeType === 'video/VP8'), 'what it can receive there');
  const transport = await newTransport();
  t.teardown(() => transport.close());
  const producer = await transport.produce({ kind: 'video', rtpParameters: offer.media[1]!.rtpParameters! });
  t.equal(producer.type, 'simulcast', 'the router takes it as a simulcast producer');
  const sections: SectionPlan[] = offer.media.map((m) => (m.rejected ? rejectedSection(m) : m.rtpParameters ? { mid: m.mid, kind: m.kind as 'audio' | 'video', receive: m.rtpParameters } : { mid: m.mid, kind: m.kind as 'audio' | 'video', idle: m.rtpCapabilities! }));
  const answer = sdpTransform.parse(buildAnswer({ transport: { iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters }, dtlsRole: 'server', origin: { sessionId: '1', version: 1 }, sections }));
  t.same(answer.groups, [{ type: 'BUNDLE', mids: '0 1 2' }], 'the rejected data channel is out of the BUNDLE group');
  t.same(answer.media.map((m) => [m.mid, m.port === 0 ? 'rejected' : m.direction]), [['0', 'recvonly'], ['1', 'recvonly'], ['2', 'inactive'], ['3', 'rejected']]);
  t.match(answer.media[1], { simulcast: { dir1: 'recv', list1: 'q;h;f' }, rids: [{ id: 'q', direction: 'recv' }, { id: 'h', direction: 'recv' }, { id: 'f', direction: 'recv' }] });
  t.equal(answer.media[3]!.protocol, 'UDP/DTLS/SCTP', 'the rejected m-line keeps its protocol');
  const serverOffer = sdpTransform.parse(buildOffer({ transport: { iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters }, origin: { sessionId: '1', version: 2 }, sections }));
  t.ok(serverOffer.media.filter((m) => m.port !== 0).every((m) => m.setup === 'actpass'), 'a server offer leaves the DTLS role to the answerer');
  t.equal(serverOffer.origin.sessionVersion, 2);
});

t.test('what the bridge refuses, naming the m-line', async (t) => {
  refused(t, 'hello world', /v=0/, 'garbage');
  refused(t, 42, /string/, 'not a string');
  refused(t, 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n', /no m-line/, 'no m-line');
  refused(t, sendrecv.replace(/a=group:BUNDLE .*\r\n/, ''), /m-line 0 \(audio, mid 0\).*BUNDLE/, 'no BUNDLE group');
  refused(t, sendrecv.replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0'), /m-line 1 \(video, mid 1\).*BUNDLE/, 'a BUNDLE group that leaves an m-line out');
  refused(t, sendrecv.replace(/a=rtcp-mux\r\n/g, ''), /m-line 0 .*rtcp-mux/, 'no rtcp-mux');
  refused(t, sendrecv.replace(/a=mid:.*\r\n/g, ''), /m-line 0 .*a=mid/, 'no mids (Plan B era)');
  const planB = sendrecv.replace(/(a=ssrc:270310525 cname:\S+\r\n)/, '$1a=ssrc:11111111 cname:x\r\na=ssrc:11111111 msid:other-stream other-track\r\n');
  refused(t, planB, /m-line 1 \(video, mid 1\).*Plan B/, 'Plan B: two streams in one m-line');
  const onlyPcmu = sendrecv.replace(/m=audio 9 UDP\/TLS\/RTP\/SAVPF [\d ]+/, 'm=audio 9 UDP/TLS/RTP/SAVPF 0').replace(/a=(rtpmap|fmtp|rtcp-fb):(111|63|9|8|13|110|126) .*\r\n/g, '');
  refused(t, onlyPcmu, /m-line 0 \(audio, mid 0\): no codec in common.*opus/, 'no codec in common');
  const dataOnly = simulcast.split('m=audio')[0]!.replace('BUNDLE 0 1 2 3', 'BUNDLE 3') + 'm=application' + simulcast.split('m=application')[1]!;
  refused(t, dataOnly, /data channels alone/, 'data channel only');
  refused(t, sendrecv.replace(/a=fingerprint:.*\r\n/g, ''), /fingerprint/, 'no fingerprint');
  refused(t, sendrecv.replace(/a=setup:actpass/g, 'a=setup:holdconn'), /a=setup/, 'a bad a=setup');
});

t.test('1,200 seeded mutations of real Chrome offers: each is an answer or a validation_failed', async (t) => {
  const random = prng(Number(process.env.CALLPLANE_FUZZ_SEED ?? 20261202));
  const transport = await newTransport();
  t.teardown(() => transport.close());
  const description = { iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters };
  let answered = 0;
  let refusedCount = 0;
  const other: string[] = [];
  for (let i = 0; i < 1200; i++) {
    const sdp = mutate(i % 2 ? sendrecv : simulcast, random);
    try {
      const offer = parseOffer(sdp, caps);
      const sections: SectionPlan[] = offer.media.map((m) => (m.rejected ? rejectedSection(m) : { mid: m.mid, kind: m.kind as 'audio' | 'video', ...(m.rtpParameters ? { receive: m.rtpParameters } : {}), idle: m.rtpCapabilities ?? offer.rtpCapabilities }));
      sdpTransform.parse(buildAnswer({ transport: description, dtlsRole: serverDtlsRole(offer), origin: { sessionId: '1', version: 1 }, sections }));
      answered++;
    } catch (error) {
      if (error instanceof AppError && error.code === 'validation_failed') refusedCount++;
      else other.push(`${i}: ${String(error)}`);
    }
  }
  t.same(other, [], 'nothing but answers and validation_failed');
  t.ok(answered > 50 && refusedCount > 50, `both outcomes occur (answered ${answered}, refused ${refusedCount})`);
});
