/**
 * End-to-end media encryption for the demo client (docs/videochat.md, "End-to-end encryption"):
 * WebRTC Encoded Transforms (RTCRtpScriptTransform) encrypt every encoded frame with AES-GCM under
 * a key derived (SHA-256) from the call's sharedSecret, so the SFU forwards only ciphertext. The
 * first bytes of each frame stay clear, as other SFU-based E2EE schemes do: the VP8 header (10
 * bytes of a key frame, 3 of a delta frame) and Opus's TOC byte, which depacketizers read.
 * A video frame's clear header also carries a poisoned VP8 partition size (larger than any
 * frame; the true one is sealed inside the ciphertext), so a decoder handed the frame without the
 * key refuses it instead of painting noise. Frame layout: [clear header][ciphertext + tag][12-byte
 * IV], the ciphertext sealing [the true 3-byte VP8 frame tag (video)][the rest of the frame]. A
 * frame that does not decrypt is dropped.
 */
const WORKER_SOURCE = `
const keys = new Map();
function keyFor(secret) {
  if (!keys.has(secret)) keys.set(secret, crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret)).then((raw) => crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt'])));
  return keys.get(secret);
}
onrtctransform = (event) => {
  const { readable, writable, options } = event.transformer;
  const clear = (frame) => (options.kind === 'audio' ? 1 : frame.type === 'key' ? 10 : 3);
  const transform = new TransformStream({
    async transform(frame, controller) {
      const key = await keyFor(options.secret);
      const data = new Uint8Array(frame.data);
      const n = Math.min(clear(frame), data.length);
      const tag = options.kind === 'video' && n >= 3 ? 3 : 0;
      if (options.direction === 'encrypt') {
        const header = data.slice(0, n);
        if (tag) {
          // Keep the key-frame bit, version and show_frame; first_part_size (19 bits) becomes 0x7FFFF.
          header[0] |= 0xe0;
          header[1] = 0xff;
          header[2] = 0xff;
        }
        const plain = new Uint8Array(tag + data.length - n);
        plain.set(data.subarray(0, tag));
        plain.set(data.subarray(n), tag);
        const iv = crypto.getRandomValues(new Uint8Array(12));
        const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: header }, key, plain));
        const out = new Uint8Array(n + sealed.length + 12);
        out.set(header);
        out.set(sealed, n);
        out.set(iv, n + sealed.length);
        frame.data = out.buffer;
        controller.enqueue(frame);
        return;
      }
      if (data.length < n + 16 + 12) return;
      try {
        const header = data.slice(0, n);
        const iv = data.slice(data.length - 12);
        const opened = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: header }, key, data.subarray(n, data.length - 12)));
        const out = new Uint8Array(n + opened.length - tag);
        out.set(header);
        out.set(opened.subarray(0, tag));
        out.set(opened.subarray(tag), n);
        frame.data = out.buffer;
        controller.enqueue(frame);
      } catch {
        // Not sealed with this call's key: never hand it to the decoder.
      }
    },
  });
  readable.pipeThrough(transform).pipeTo(writable);
};
`;

let worker: Worker | null = null;

function sharedWorker(): Worker {
  worker ??= new Worker(URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' })), { name: 'callplane-e2ee' });
  return worker;
}

export function e2eeSupported(): boolean {
  return typeof RTCRtpScriptTransform === 'function';
}

/** Encrypts what `sender` sends (set before the first frame: mediasoup-client's onRtpSender). */
export function encryptSender(sender: RTCRtpSender, kind: string, secret: string): void {
  sender.transform = new RTCRtpScriptTransform(sharedWorker(), { direction: 'encrypt', kind, secret });
}

/** Decrypts what `receiver` receives (set before the consumer is resumed: onRtpReceiver). */
export function decryptReceiver(receiver: RTCRtpReceiver, kind: string, secret: string): void {
  receiver.transform = new RTCRtpScriptTransform(sharedWorker(), { direction: 'decrypt', kind, secret });
}
