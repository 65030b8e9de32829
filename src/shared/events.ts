/**
 * One typed event emitter for the project's long-lived objects (worker pool, routers, call sessions,
 * the SFU registry). Children report upward with events; a listener that throws is reported through
 * `onListenerError` and never breaks the emitter's own work (a close cascade, a worker replacement, a
 * signaling request).
 */
import { EventEmitter } from 'node:events';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the shape node's EventEmitter<T> requires
export class SafeEmitter<Events extends Record<keyof Events, any[]>> extends EventEmitter<Events> {
  constructor(private readonly onListenerError: (error: unknown, event: keyof Events & string) => void) {
    super();
  }

  /** Emits `event` to its listeners; a throwing listener is reported, not rethrown. */
  emitSafe<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
    try {
      (this.emit as unknown as (event: K, ...args: Events[K]) => boolean)(event, ...args);
    } catch (error) {
      this.onListenerError(error, event);
    }
  }
}
