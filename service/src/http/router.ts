import { OpenAPIHono, type Hook } from '@hono/zod-openapi';
import { ValidationFailed } from './problem.js';
import type { AppEnv } from './types.js';

const TARGET_NAMES: Record<string, string> = {
  json: 'body',
  query: 'query',
  param: 'path',
  header: 'header',
};

/** zod failures become one 400 problem listing every bad field, never a 500. */
const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (result.success) return;
  const where = TARGET_NAMES[result.target] ?? result.target;
  const errors = result.error.issues.map((issue) => ({
    path: [where, ...issue.path].join('.'),
    message: issue.message,
  }));
  throw new ValidationFailed(errors.map((error) => `${error.path}: ${error.message}`).join('; '), errors);
};

/** Every router (the app and each feature's) validates with the same hook. */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}
