/**
 * A typed listener map over the platform's EventTarget, which browsers and Node both have (Node's
 * `events` is not in a browser). A listener that throws is reported by the platform (the page's
 * error handler, or Node's uncaughtException) instead of stopping the client half-way through a
 * frame.
 */
export class TypedEvents<Events extends object> {
  private readonly target = new EventTarget();

  /** Calls `listener` with each `type` event's detail; returns the function that stops it. */
  on<K extends keyof Events & string>(type: K, listener: (detail: Events[K]) => void): () => void {
    const wrapped = (event: Event) => listener((event as CustomEvent<Events[K]>).detail);
    this.target.addEventListener(type, wrapped);
    return () => this.target.removeEventListener(type, wrapped);
  }

  /** The next `type` event's detail. */
  once<K extends keyof Events & string>(type: K): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(type, (detail) => {
        off();
        resolve(detail);
      });
    });
  }

  protected emit<K extends keyof Events & string>(type: K, detail: Events[K]): void {
    this.target.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
