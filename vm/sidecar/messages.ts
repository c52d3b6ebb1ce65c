/**
 * What the host accepts from a guest's sidecar, checked frame by frame. The guest is hostile (a
 * spawner has root in it): a frame that is not one of these — a seq that is not a positive safe
 * integer, an exit code out of range, an oversized string — ends the session and, through the
 * pump, the task, with the reason. Nothing unchecked reaches PostgreSQL or a workflow.
 */
import { z } from 'zod';
import { QUESTION_ID_RE, TOOL_NAME_RE } from '../../common/conversation.js';

const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const text = (max: number) => z.string().max(max);

export const sidecarMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    version: z.number().int(),
    agent: z.enum(['idle', 'running', 'exited']),
    nextSeq: seq,
    pid: z.number().int().positive().optional(),
  }),
  z.object({ type: z.literal('output'), seq }),
  z.object({
    type: z.literal('exit'),
    code: z
      .number()
      .int()
      .min(-(2 ** 31))
      .max(2 ** 31 - 1)
      .nullable(),
    signal: text(64).nullable(),
    message: text(2000).optional(),
  }),
  z.object({ type: z.literal('pong'), id: z.number().int() }),
  z.object({ type: z.literal('started'), pid: z.number().int().nonnegative() }),
  z.object({ type: z.literal('error'), message: text(2000) }),
  // A question before a tool use; body: the tool's input as JSON (checked where it is read).
  z.object({
    type: z.literal('question'),
    id: z.string().regex(QUESTION_ID_RE),
    tool: z.string().regex(TOOL_NAME_RE),
    toolUseId: text(128).optional(),
  }),
  z.object({ type: z.literal('question-gone'), id: z.string().regex(QUESTION_ID_RE) }),
  z.object({ type: z.literal('answer-ack'), id: z.string().regex(QUESTION_ID_RE) }),
  z.object({ type: z.literal('turn-ack'), n: z.number().int().min(2).max(1_000_000) }),
  z.object({
    type: z.literal('git-result'),
    id: z.number().int().nonnegative(),
    ok: z.boolean(),
    output: text(16_000),
    empty: z.boolean().optional(),
  }),
  // Body: the diff as JSON (checked against common/diff.ts's schema where it is read).
  z.object({
    type: z.literal('diff-result'),
    id: z.number().int().nonnegative(),
    ok: z.boolean(),
    error: text(4000).optional(),
  }),
]);
