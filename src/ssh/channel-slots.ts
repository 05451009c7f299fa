// At most MAX_CHANNELS commands at once on one connection, for both
// transports. OpenSSH's default MaxSessions is 10: staying at 8 (plus the
// openssh master's own session) means a channel open never fails on a busy
// node. A closed session wakes every waiter, which then fails fast.
export const MAX_CHANNELS = 8;

export class ChannelSlots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  async acquire(closed: () => boolean): Promise<void> {
    while (this.active >= MAX_CHANNELS && !closed()) {
      await new Promise<void>((wake) => this.waiting.push(wake));
    }
    this.active++;
  }

  release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  wakeAll(): void {
    for (const wake of this.waiting.splice(0)) wake();
  }
}
