/**
 * The test S3 server: s3rver in a child process (it needs --openssl-legacy-provider, which the
 * test process cannot turn on), on a port and a directory that survive a stop, so a test can take
 * storage down and bring it back with its objects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { Test } from 'tap';
import { freePortBase } from './ports.ts';

export const S3_KEY = 'S3RVER';

export class TestS3 {
  #child: ChildProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly bucket: string,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(t: Test, bucket = 'callplane-rec'): Promise<TestS3> {
    const dir = await mkdtemp(join(tmpdir(), 'callplane-s3rver-'));
    const s3 = new TestS3(dir, await freePortBase(1), bucket);
    t.teardown(async () => {
      await s3.stop();
      await rm(dir, { recursive: true, force: true });
    });
    await s3.up();
    const admin = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY } });
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    admin.destroy();
    return s3;
  }

  /** Settings for callplane's s3 driver against this server (CALLPLANE_* variables). */
  env(): Record<string, string> {
    return {
      CALLPLANE_STORAGE_DRIVER: 's3',
      CALLPLANE_STORAGE_S3_ENDPOINT: this.endpoint,
      CALLPLANE_STORAGE_S3_BUCKET: this.bucket,
      CALLPLANE_STORAGE_S3_ACCESS_KEY_ID: S3_KEY,
      CALLPLANE_STORAGE_S3_SECRET_ACCESS_KEY: S3_KEY,
    };
  }

  /** The same as config overrides (startTestServer). */
  settings(): Record<string, unknown> {
    return { storage: { driver: 's3', s3: { endpoint: this.endpoint, region: 'us-east-1', bucket: this.bucket, access_key_id: S3_KEY, secret_access_key: S3_KEY, force_path_style: true } } };
  }

  /** Starts s3rver (again) on the same port and directory; resolves once it listens. */
  async up(): Promise<void> {
    const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ['--openssl-legacy-provider', bin, '-d', this.dir, '-a', '127.0.0.1', '-p', String(this.port), '-s'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`s3rver did not listen within 20 s: ${err}`)), 20_000);
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/S3rver listening/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited with ${code}: ${err}`));
      });
    });
  }

  /** Storage down: the process is gone (connections refused) until up(). */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}
