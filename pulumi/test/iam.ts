/**
 * A small, deliberately strict evaluator of identity policies, enough to ask "would IAM allow this
 * request?" of the documents the program produces: Allow/Deny, Action and Resource with `*` and `?`
 * wildcards, and the StringEquals / StringLike condition operators, where a condition key the
 * request does not carry fails the condition (so a `kms:ViaService` condition refuses a direct
 * call, as IAM does). Condition key names match case-insensitively, as in IAM. Anything else it meets
 * (NotAction, NotResource, other operators) makes it throw, so a policy cannot pass by using
 * something the test does not understand.
 */
import type { PolicyDocument, PolicyStatement } from '../src/policies.js';

export interface Request {
  action: string;
  resource: string;
  context?: Record<string, string>;
}

function wildcard(pattern: string, value: string, caseInsensitive = false): boolean {
  const source = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, caseInsensitive ? 'i' : '').test(value);
}

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

function conditionHolds(statement: PolicyStatement, context: Record<string, string>): boolean {
  for (const [operator, entries] of Object.entries(statement.Condition ?? {})) {
    for (const [key, expected] of Object.entries(entries)) {
      const actual = Object.entries(context).find(([name]) => name.toLowerCase() === key.toLowerCase())?.[1];
      if (actual === undefined) return false;
      const values = list(expected);
      if (operator === 'StringEquals') {
        if (!values.includes(actual)) return false;
      } else if (operator === 'StringLike') {
        if (!values.some((pattern) => wildcard(pattern, actual))) return false;
      } else {
        throw new Error(`evaluator does not understand condition operator ${operator}`);
      }
    }
  }
  return true;
}

function matches(statement: PolicyStatement, request: Request): boolean {
  for (const field of ['NotAction', 'NotResource', 'NotPrincipal']) {
    if (field in statement) throw new Error(`evaluator refuses ${field}`);
  }
  const actionMatches = list(statement.Action).some((action) => wildcard(action, request.action, true));
  const resourceMatches = list(statement.Resource).some((resource) => wildcard(resource, request.resource));
  return actionMatches && resourceMatches && conditionHolds(statement, request.context ?? {});
}

/** Explicit deny wins, then any allow; otherwise implicitly denied. */
export function isAllowed(policy: PolicyDocument, request: Request): boolean {
  const applicable = policy.Statement.filter((statement) => matches(statement, request));
  if (applicable.some((statement) => statement.Effect === 'Deny')) return false;
  return applicable.some((statement) => statement.Effect === 'Allow');
}
