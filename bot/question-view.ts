/**
 * The agent's questions in the task's thread: a message with the tool, its input (a command, a
 * file and a diff preview, trimmed to fit) and the buttons Allow once / Always allow this tool in
 * this task / Deny; once settled, the same message says who decided what and when, without
 * buttons (bot/questions.ts answers a press).
 */
import { ActionRowBuilder, ButtonBuilder, ButtonStyle } from 'discord.js';
import {
  CHOICE_LABELS,
  type Choice,
  type DecisionView,
  describeDecision,
  type QuestionView,
  questionButtonId,
} from '../common/conversation.js';
import { DISCORD } from './discord-rules.js';

/** Breaks runs of backticks so the input cannot close the code block it is shown in. */
const defuse = (s: string) => s.replace(/`{3,}/g, (m) => m.split('').join('\u200b'));

const STYLES: Record<Choice, ButtonStyle> = {
  once: ButtonStyle.Success,
  always: ButtonStyle.Primary,
  deny: ButtonStyle.Danger,
};

/** The question's text: the tool, what it will do, the preview; fits one Discord message. */
export function questionText(q: QuestionView, decision: DecisionView | null): string {
  const head = decision
    ? `**${q.tool}** — the agent asked:`
    : `**The agent asks to use ${q.tool}** (denied <t:${Math.round(q.deadline / 1000)}:R> if nobody answers):`;
  const tail = decision ? `\n${decisionLine(decision)}` : '';
  // Room for the head, the tail, the fences; the rest split between summary and detail.
  const room = DISCORD.contentMax - head.length - tail.length - 40;
  const summary = defuse(q.summary).slice(0, Math.min(800, Math.floor(room / 2)));
  const detail = defuse(q.detail).slice(0, Math.max(0, room - summary.length));
  const lang = q.tool === 'Edit' || q.tool === 'MultiEdit' ? 'diff' : '';
  return `${head}\n\`\`\`\n${summary}\n\`\`\`${detail ? `\n\`\`\`${lang}\n${detail}\n\`\`\`` : ''}${tail}`;
}

/** "✅ Allowed once by <@u> <t:…:f>" */
export function decisionLine(d: DecisionView): string {
  const mark = d.decision === 'allow' ? '✅' : '⛔';
  return `${mark} ${describeDecision(d, d.by ? `<@${d.by}>` : '')} · <t:${Math.round(d.at / 1000)}:f>`;
}

export function questionButtons(taskId: string, questionId: string): ActionRowBuilder<ButtonBuilder> {
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    (['once', 'always', 'deny'] as const).map((c) =>
      new ButtonBuilder()
        .setCustomId(questionButtonId(taskId, questionId, c))
        .setStyle(STYLES[c])
        .setLabel(CHOICE_LABELS[c]),
    ),
  );
}
