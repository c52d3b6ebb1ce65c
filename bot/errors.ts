/** Turns a failure into the one line the user sees; unexpected ones are logged, not shown raw. */

import type { Logger } from '../common/logger.js';
import { TaskError } from '../tasks/service.js';

export class Refusal extends Error {}

export function userMessage(err: unknown, logger: Logger, what: string): string {
  if (err instanceof Refusal) return err.message;
  if (err instanceof TaskError) {
    if (err.code === 'unavailable') logger.warn({ err: err.message }, `${what}: task service unavailable`);
    return err.code === 'unavailable' ? `Lia could not reach its task service: ${err.message}` : err.message;
  }
  logger.error({ err }, `${what} failed`);
  return `Something went wrong (${what}); the error is in Lia's log.`;
}
