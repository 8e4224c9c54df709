import { describe, expect, it } from 'vitest';
import * as domainErrors from '../domain/errors.js';
import { DomainError } from '../domain/errors.js';
import { problemFromDomainError } from './errors.js';

/** Every concrete DomainError the domain exports, built with a detail (and a code where it takes one). */
type Kind = new (detail: string, code: string) => DomainError;
const kinds = (Object.values(domainErrors) as unknown[]).filter(
  (value): value is Kind => typeof value === 'function' && value.prototype instanceof DomainError,
);

describe('domain errors over HTTP', () => {
  it('gives every kind of domain error a problem of its own, never a 500', () => {
    expect(kinds.length).toBeGreaterThanOrEqual(6);
    for (const Kind of kinds) {
      const problem = problemFromDomainError(new Kind('what happened', 'some-reason'));
      expect(problem, Kind.name).toBeDefined();
      expect(problem!.status, Kind.name).toBeGreaterThanOrEqual(400);
      expect(problem!.status, Kind.name).not.toBe(500);
    }
  });

  it.each([
    [new domainErrors.NotFound('no room 1'), 404, 'urn:parley:problem:not-found', {}],
    [new domainErrors.Forbidden('join first'), 403, 'urn:parley:problem:forbidden', {}],
    [
      new domainErrors.Unauthenticated('bad token'),
      401,
      'urn:parley:problem:unauthorized',
      { 'WWW-Authenticate': 'Bearer realm="parley"' },
    ],
    [new domainErrors.Conflict('taken', 'username-taken'), 409, 'urn:parley:problem:username-taken', {}],
    [new domainErrors.IdempotencyKeyReused(), 422, 'urn:parley:problem:idempotency-key-reused', {}],
    [
      new domainErrors.Unprocessable('type not allowed', 'attachment-type-not-allowed'),
      422,
      'urn:parley:problem:attachment-type-not-allowed',
      {},
    ],
    [
      new domainErrors.NotPropagated('saved; retry', 'membership-not-propagated', 2),
      503,
      'urn:parley:problem:membership-not-propagated',
      { 'Retry-After': '2' },
    ],
  ])('maps %s to %i with its type, detail and headers', (error, status, type, headers) => {
    const problem = problemFromDomainError(error)!;
    expect(problem.toProblem()).toMatchObject({ status, type, detail: error.message });
    expect(problem.headers).toEqual(headers);
  });
});
