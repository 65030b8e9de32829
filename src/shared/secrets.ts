import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomToken } from './ids.ts';

/** Reads a secret file, or creates it (0600) with a fresh random value; a concurrent creator wins. */
export async function loadOrCreateSecretFile(file: string, prefix = ''): Promise<string> {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = `${prefix}${randomToken(32)}`;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFile(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
    return value;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw error;
  }
}
