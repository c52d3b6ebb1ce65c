/** One JSON error shape for every route: `{ "error": { "code", "message" } }`. */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { TaskError, type TaskErrorCode } from '../tasks/errors.js';

export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STATUS: Record<TaskErrorCode, ContentfulStatusCode> = {
  invalid: 400,
  not_found: 404,
  forbidden: 403,
  conflict: 409,
  quota: 429,
  unavailable: 503,
};

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof TaskError) return new HttpError(STATUS[err.code], err.code, err.message);
  return undefined;
}

export function sendError(c: Context, err: HttpError) {
  return c.json(errorBody(err.code, err.message), err.status);
}

/** "prompt: the prompt must not be empty; files.0.name: …" — each problem with where it is. */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const where = i.path.length ? `${i.path.join('.')}: ` : '';
      return `${where}${i.message}`;
    })
    .join('; ');
}

export function invalid(message: string): HttpError {
  return new HttpError(400, 'invalid', message);
}
