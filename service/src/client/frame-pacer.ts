/**
 * Sends a socket's client frames no faster than the server accepts them. The gateway allows
 * REALTIME_MAX_FRAMES_PER_SECOND (20 by default) in a token bucket and closes a socket that sends
 * more with 1008, which resubscribing to many rooms after a reconnect would do at once. The pacer
 * is a bucket of its own, refilled continuously: a burst of `perSecond`, then `perSecond` a second.
 */
export class FramePacer {
  private readonly queue: string[] = [];
  private tokens: number;
  private tokensAt = Date.now();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly send: (data: string) => void,
  ) {
    this.tokens = perSecond;
  }

  push(data: string): void {
    this.queue.push(data);
    this.drain();
  }

  /** Drops what is still queued: the socket closed. */
  stop(): void {
    this.queue.length = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private drain(): void {
    const now = Date.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.tokensAt) / 1000) * this.perSecond);
    this.tokensAt = now;
    while (this.queue.length > 0 && this.tokens >= 1) {
      this.tokens--;
      this.send(this.queue.shift()!);
    }
    if (this.queue.length > 0 && this.timer === undefined) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.drain();
        },
        Math.ceil(((1 - this.tokens) / this.perSecond) * 1000),
      );
    }
  }
}
