/**
 * A task's conversation over REST, for the task page (its signed link) and services (the bot's
 * token): the questions its agent waits on, the answer to one, the decisions so far, and
 * follow-up messages.
 *
 *   GET  /api/v1/tasks/{id}/conversation          questions, decisions, allowed tools, turns
 *   POST /api/v1/tasks/{id}/questions/{qid}       {"choice":"once"|"always"|"deny"} → the decision
 *   POST /api/v1/tasks/{id}/turns                 {"text":"…"} → the turn (headless), or typed
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { choiceSchema, questionIdSchema, turnTextSchema } from '../../common/conversation.js';
import type { TaskService } from '../../tasks/service.js';
import type { AuthEnv } from '../auth.js';
import { describeZodError, invalid } from '../errors.js';
import type { AnswerResponse, FollowUpResponse } from '../types.js';
import { readJson } from '../validation.js';

const answerBody = z.object({ choice: choiceSchema }).strict();
const turnBody = z.object({ text: turnTextSchema }).strict();

export function conversationRoutes(tasks: TaskService): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  app.get('/:id/conversation', async (c) =>
    c.json(await tasks.conversation(c.get('caller'), c.get('taskId'))),
  );

  app.post('/:id/questions/:qid', async (c) => {
    const qid = questionIdSchema.safeParse(c.req.param('qid'));
    if (!qid.success) throw invalid(describeZodError(qid.error));
    const body = answerBody.safeParse(await readJson(c.req));
    if (!body.success) throw invalid(describeZodError(body.error));
    const decision = await tasks.answer(c.get('caller'), c.get('taskId'), qid.data, body.data.choice);
    const res: AnswerResponse = { taskId: c.get('taskId'), decision };
    return c.json(res);
  });

  app.post('/:id/turns', async (c) => {
    const body = turnBody.safeParse(await readJson(c.req));
    if (!body.success) throw invalid(describeZodError(body.error));
    const r = await tasks.followUp(c.get('caller'), c.get('taskId'), body.data.text);
    const res: FollowUpResponse = { taskId: c.get('taskId'), ...r };
    return c.json(res, 202);
  });

  return app;
}
