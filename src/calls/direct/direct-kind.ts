/**
 * Direct videochat calls (the `direct` kind) are made by the videochat handshake on the user socket,
 * which is not built yet: no call of this kind can exist, and every action on one says so.
 */
import { AppError } from '../../shared/errors.ts';
import type { CallKindHandler } from '../kinds.ts';

const notBuilt = async (): Promise<never> => {
  throw new AppError('invalid_state', 'Direct videochat calls are not available yet');
};

export class DirectCallKind implements CallKindHandler {
  readonly kind = 'direct' as const;
  join = notBuilt;
  newToken = notBuilt;
  leave = notBuilt;
  reject = notBuilt;
  end = notBuilt;
  describe = notBuilt;
  acceptsSignaling(): boolean {
    return false;
  }
  async canEndCall(): Promise<boolean> {
    return false;
  }
  async emptied(): Promise<void> {}
  async changed(): Promise<void> {}
  async participantGone(): Promise<void> {}
}
