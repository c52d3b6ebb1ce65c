/**
 * Which errors end a task. A VM step fails for good when the driver says retrying cannot help
 * (a missing binary, a bad image, a snapshot QEMU refuses), when it has failed the same way
 * MAX_VM_ATTEMPTS times, or when the guest broke the protocol; anything else — PostgreSQL away,
 * a busy socket, a worker restart — is thrown as it is and retried without a cap.
 */
import { ApplicationFailure, type Context } from '@temporalio/activity';
import { VmError } from '../vm/driver.js';
import { GuestProtocolError } from '../vm/sidecar/client.js';

export const MAX_VM_ATTEMPTS = 5;

export function classifyVmError(err: unknown, attempt: number, final = false): unknown {
  if (err instanceof ApplicationFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof GuestProtocolError)
    return ApplicationFailure.create({ type: 'GuestProtocolError', message, nonRetryable: true });
  if (final || (err instanceof VmError && !err.retryable))
    return ApplicationFailure.create({ type: 'VmError', message, nonRetryable: true });
  if (err instanceof VmError && attempt >= MAX_VM_ATTEMPTS)
    return ApplicationFailure.create({
      type: 'VmError',
      message: `${message} (gave up after ${attempt} attempts)`,
      nonRetryable: true,
    });
  return err;
}

/**
 * Runs `fn` while heartbeating every 5 s with what it is doing now (the Temporal UI shows the
 * last one: "booting: waiting for the guest's sidecar (40 s)"); `progress` updates it at once.
 */
export async function heartbeating<T>(
  ctx: Context,
  what: string,
  fn: (progress: (message: string) => void) => Promise<T>,
): Promise<T> {
  let last = what;
  ctx.heartbeat(last);
  const timer = setInterval(() => ctx.heartbeat(last), 5000);
  try {
    return await fn((m) => {
      last = m;
      ctx.heartbeat(m);
    });
  } finally {
    clearInterval(timer);
  }
}
