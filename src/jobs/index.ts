/** Durable background jobs for every domain module (graphile-worker): kinds, the queue, the runner. */
export * from './queue.ts';
export * from './runner.ts';
