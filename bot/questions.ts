/**
 * A press of a question's button in the task's thread (bot/question-view.ts draws them). It is
 * answered by the task service (which asks the workflow); only the owner or
 * an admin may answer, others get an ephemeral refusal.
 */
import type { ButtonInteraction } from 'discord.js';
import { type Choice, describeDecision, parseQuestionButton } from '../common/conversation.js';
import { TaskError } from '../tasks/errors.js';
import { interactionActor } from './actor.js';
import type { Reply } from './commands/types.js';
import type { BotContext } from './context.js';
import { Refusal } from './errors.js';

export { parseQuestionButton };

/** A press of a question's button: the owner's (or an admin's) answer; anyone else is refused. */
export async function answerQuestion(
  i: ButtonInteraction,
  ctx: BotContext,
  b: { taskId: string; questionId: string; choice: Choice },
): Promise<Reply> {
  const actor = interactionActor(ctx.config, i);
  let status: string;
  try {
    status = (await ctx.tasks.authorized(actor, b.taskId)).status;
  } catch (err) {
    if (err instanceof TaskError && err.code === 'forbidden')
      throw new Refusal(
        `Only the owner of task ${b.taskId} (or a Lia admin) can answer its questions; your click changed nothing.`,
      );
    throw err;
  }
  const d = await ctx.tasks.answer(actor, b.taskId, b.questionId, b.choice);
  const resumed =
    status === 'suspended' || status === 'suspending'
      ? ' The task was suspended: it is resuming, and the agent gets your answer once it runs again.'
      : '';
  return `${describeDecision(d, 'you')} (${d.tool}).${resumed}`;
}
