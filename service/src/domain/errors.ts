/**
 * What domain code throws when it refuses a request, in the caller's terms. How a refusal reaches a
 * client (an HTTP status and problem type, a WebSocket error frame) is decided at the edge, in one
 * place per protocol (http/errors.ts for HTTP), so features never speak HTTP.
 */
export abstract class DomainError extends Error {
  /** A stable, machine-readable reason (`username-taken`): the problem type's last segment. */
  abstract readonly code: string;

  constructor(detail: string) {
    super(detail);
    this.name = new.target.name;
  }
}

/** The thing does not exist, or the caller may not know that it does (a private room). */
export class NotFound extends DomainError {
  readonly code = 'not-found';
}

/** The caller is known but may not do this. */
export class Forbidden extends DomainError {
  readonly code = 'forbidden';
}

/** The caller could not be identified: no, a bad, an expired or a revoked credential. */
export class Unauthenticated extends DomainError {
  readonly code = 'unauthorized';
}

/** The request contradicts what is stored, e.g. a username that is taken. */
export class Conflict extends DomainError {
  constructor(
    detail: string,
    readonly code: string = 'conflict',
  ) {
    super(detail);
  }
}

/**
 * The request is well-formed but names something it cannot use: an attachment type the service
 * does not accept, a size over the cap, an attachment that is not the caller's to attach.
 */
export class Unprocessable extends DomainError {
  constructor(
    detail: string,
    readonly code: string = 'unprocessable',
  ) {
    super(detail);
  }
}

/** An Idempotency-Key came back with another request than the one it was first used with. */
export class IdempotencyKeyReused extends DomainError {
  readonly code = 'idempotency-key-reused';

  constructor() {
    super('this Idempotency-Key was already used with a different request body');
  }
}

/**
 * The change is stored but could not be made visible everywhere yet (a cache on other processes may
 * still show the old state): the client should retry, which is safe.
 */
export class NotPropagated extends DomainError {
  constructor(
    detail: string,
    readonly code: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(detail);
  }
}
