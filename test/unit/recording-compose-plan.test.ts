import t from 'tap';
import { gridLayout, planComposition, type ComposeSegment } from '../../src/recording/compose.ts';

const settings = { width: 1280, height: 720, fps: 15, preset: 'veryfast' as const, crf: 26, audio_bitrate_kbps: 96 };
const seg = (over: Partial<ComposeSegment>): ComposeSegment => ({ file: 'f.mkv', kind: 'video', participantId: 'p1', offsetMs: 0, startTimeSeconds: 0, ...over });

t.test('grid: columns = ceil(sqrt(n)), even tile sizes, row-major', async (t) => {
  t.same(gridLayout(1, 1280, 720), [{ x: 0, y: 0, w: 1280, h: 720 }]);
  t.same(gridLayout(2, 1280, 720).map((g) => [g.x, g.y, g.w, g.h]), [[0, 0, 640, 720], [640, 0, 640, 720]]);
  t.same(gridLayout(3, 1280, 720).map((g) => [g.x, g.y]), [[0, 0], [640, 0], [0, 360]]);
  t.same(gridLayout(5, 1280, 720).map((g) => [g.w, g.h]).at(-1), [426, 360], '3 columns: 1280/3 rounded down to even');
});

t.test('each segment is placed at its offset (minus the file start), one tile per participant, audio mixed', async (t) => {
  const plan = planComposition(
    [
      seg({ file: 'a-v1.mkv', participantId: 'ann', offsetMs: 200, startTimeSeconds: 0.05 }),
      seg({ file: 'a-a1.mkv', kind: 'audio', participantId: 'ann', offsetMs: 150 }),
      seg({ file: 'b-v1.mkv', participantId: 'bob', offsetMs: 5000 }),
      seg({ file: 'a-v2.mkv', participantId: 'ann', offsetMs: 7000 }),
    ],
    10_000,
    settings,
    true,
  );
  t.same(plan.inputs, ['a-v1.mkv', 'a-a1.mkv', 'b-v1.mkv', 'a-v2.mkv']);
  t.match(plan.filter, /\[0:v\]setpts=PTS-0\.050\/TB\+0\.200\/TB/);
  t.match(plan.filter, /\[2:v\]setpts=PTS-0\.000\/TB\+5\.000\/TB/);
  t.match(plan.filter, /\[base1\]\[v1\]overlay=640:0/, "Bob's segment goes to the second tile");
  t.match(plan.filter, /\[base2\]\[v2\]overlay=0:0/, "Ann's second segment goes to her tile, on top");
  t.match(plan.filter, /\[1:a\]asetpts=PTS-0\.000\/TB\+0\.150\/TB,aresample=48000:async=1:first_pts=0\[a0\]/);
  t.match(plan.filter, /color=c=black:s=1280x720:r=15:d=10\.000/);
  t.equal(plan.contentType, 'video/mp4');
  t.same(plan.outputOptions.slice(-3), ['+faststart', '-t', '10.000']);
});

t.test('audio only: no video stream, audio/mp4; several audio tracks are mixed', async (t) => {
  const plan = planComposition([seg({ kind: 'audio' }), seg({ kind: 'audio', participantId: 'p2', offsetMs: 3000 })], 5000, settings, true);
  t.equal(plan.contentType, 'audio/mp4');
  t.ok(plan.audioOnly);
  t.ok(plan.outputOptions.includes('-vn'));
  t.match(plan.filter, /\[a0\]\[a1\]amix=inputs=2:duration=longest:normalize=0,apad,atrim=0:5\.000\[aout\]/);
});

t.test('video with audio asked but none captured: a silent AAC track keeps the H.264 + AAC shape', async (t) => {
  const plan = planComposition([seg({})], 4000, settings, true);
  t.match(plan.filter, /anullsrc=r=48000:cl=stereo,atrim=0:4\.000\[aout\]/);
  const videoOnly = planComposition([seg({})], 4000, settings, false);
  t.notOk(videoOnly.filter.includes('[aout]'), 'audio not asked: none');
});
