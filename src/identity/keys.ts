import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exportJWK, exportPKCS8, generateKeyPair, importPKCS8, calculateJwkThumbprint, type CryptoKey, type JWK } from 'jose';
import { createPublicKey, timingSafeEqual } from 'node:crypto';
import { loadOrCreateSecretFile } from '../shared/secrets.ts';

export interface SigningKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

export function signingKeyPath(dataDir: string, configured: string | null): string {
  return configured ?? join(dataDir, 'keys', 'signing-key.pem');
}

export function apiKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', 'api-key');
}

/** Loads the EdDSA (Ed25519) signing key, generating it into the data dir on first start. */
export async function loadOrCreateSigningKey(file: string, allowCreate: boolean): Promise<SigningKey> {
  let pem: string;
  if (existsSync(file)) {
    pem = readFileSync(file, 'utf8');
  } else {
    if (!allowCreate) throw new Error(`signing key file ${file} does not exist`);
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    pem = await exportPKCS8(privateKey);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, pem, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
      pem = readFileSync(file, 'utf8'); // another process created it first: use theirs
    });
  }
  const privateKey = await importPKCS8(pem, 'EdDSA', { extractable: true });
  const publicJwk = await exportJWK(createPublicKey(pem));
  const kid = await calculateJwkThumbprint(publicJwk);
  return { privateKey, publicJwk: { ...publicJwk, kid, alg: 'EdDSA', use: 'sig' }, kid };
}

/** The operator API key: configured, or generated once into the data dir. */
export async function loadOrCreateApiKey(dataDir: string, configured: string | null): Promise<{ key: string; source: string }> {
  if (configured) return { key: configured, source: 'CALLPLANE_API_KEY / auth.api_key' };
  const file = apiKeyPath(dataDir);
  return { key: await loadOrCreateSecretFile(file, 'cpk_'), source: file };
}

export function constantTimeEquals(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
