/**
 * The local spool (docs/recording.md, "Spool"): raw tracks and composed files live here, one
 * directory per recording, until storage confirmed every file; only then is the directory removed.
 * Its size is capped by recording.spool_max_bytes.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export class Spool {
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  /** The recording's directory, or its subdirectory `sub` (created). */
  async dirFor(recordingId: string, sub?: string): Promise<string> {
    const dir = sub ? join(this.pathFor(recordingId), sub) : this.pathFor(recordingId);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  pathFor(recordingId: string): string {
    return join(this.dir, recordingId);
  }

  /** Only after storage confirmed every file of the recording. */
  async remove(recordingId: string): Promise<void> {
    await rm(this.pathFor(recordingId), { recursive: true, force: true });
  }

  async usage(): Promise<{ bytes: number; recordings: number }> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: 0, recordings: 0 };
      throw error;
    }
    let bytes = 0;
    for (const entry of entries) bytes += await sizeOf(join(this.dir, entry));
    return { bytes, recordings: entries.length };
  }

  async full(): Promise<boolean> {
    return (await this.usage()).bytes >= this.maxBytes;
  }
}

async function sizeOf(path: string): Promise<number> {
  const info = await stat(path).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path).catch(() => [] as string[])) total += await sizeOf(join(path, entry));
  return total;
}
