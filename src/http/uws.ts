import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as Uws from '@trufflesuite/uws-js-unofficial';

export type { Uws };
const require = createRequire(import.meta.url);

export class UwsNativeUnavailable extends Error {}

/**
 * Loads uWebSockets.js's native binary directly. The package itself silently falls back to a slow
 * pure-JS server when the binary does not load; callplane refuses to run on that fallback.
 */
export function loadUws(): typeof Uws {
  const fallbackFlag = process.env.UWS_USE_FALLBACK;
  if (fallbackFlag && ['1', 'true'].includes(fallbackFlag.toLowerCase())) {
    throw new UwsNativeUnavailable('UWS_USE_FALLBACK is set: callplane refuses the pure-JS uWebSockets.js fallback; unset it');
  }
  const packageMain = require.resolve('@trufflesuite/uws-js-unofficial');
  const binary = join(dirname(packageMain), '..', 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    return require(binary) as typeof Uws;
  } catch (error) {
    throw new UwsNativeUnavailable(
      `the uWebSockets.js native binary did not load (${binary}): ${(error as Error).message.split('\n')[0]}. ` +
        'callplane refuses the package\'s slow pure-JS fallback; run on Node 20 with glibc >= 2.36 (linux x64/arm64).',
    );
  }
}
