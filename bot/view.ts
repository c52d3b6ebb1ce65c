/** How a task looks in Discord: an embed with its state, and the buttons that act on it. */

import { ActionRowBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder } from 'discord.js';
import { diffStatText } from '../common/diff.js';
import type { PullRequestOutcome } from '../common/pull-request.js';
import { budgetTokens, type TaskStatus } from '../common/task.js';
import { usageText } from '../common/usage-text.js';
import type { TaskView } from '../tasks/service.js';
import { DISCORD } from './discord-rules.js';

const COLORS: Record<TaskStatus, number> = {
  pending: 0x9e9e9e,
  starting: 0x2196f3,
  running: 0x4caf50,
  suspending: 0xff9800,
  suspended: 0xff9800,
  resuming: 0x2196f3,
  terminating: 0x607d8b,
  failing: 0xf44336,
  terminated: 0x607d8b,
  failed: 0xf44336,
};

/** Button ids carry the task id, so a press works whatever the bot remembers (restarts included). */
export const BUTTON = { resume: 'lia:resume:', stop: 'lia:stop:', pr: 'lia:pr:' } as const;

export function parseButton(
  customId: string,
): { action: 'resume' | 'stop' | 'pr'; taskId: string } | undefined {
  for (const action of ['resume', 'stop', 'pr'] as const)
    if (customId.startsWith(BUTTON[action])) return { action, taskId: customId.slice(BUTTON[action].length) };
  return undefined;
}

export function taskEmbed(t: Pick<TaskView, 'id' | 'status'> & Partial<TaskView>): EmbedBuilder {
  const e = new EmbedBuilder()
    .setTitle(`Task ${t.id}`)
    .setColor(COLORS[t.status])
    .addFields({ name: 'State', value: t.status, inline: true });
  if (t.promptFirstLine) e.setDescription(t.promptFirstLine.slice(0, 300));
  if (t.runtime) e.addFields({ name: 'Runtime', value: t.runtime, inline: true });
  if (t.permissionMode) e.addFields({ name: 'Permission mode', value: t.permissionMode, inline: true });
  if (t.driver)
    e.addFields({
      name: 'VM',
      value: `${t.driver}${t.acceleration ? ` (${t.acceleration})` : ''}`,
      inline: true,
    });
  if (t.status === 'pending' && t.queue)
    e.addFields({ name: 'Waiting for a host', value: queueLine(t.queue), inline: true });
  if (t.status === 'running' && t.idleDeadline)
    e.addFields({
      name: 'Suspends when idle',
      value: `<t:${Math.round(t.idleDeadline / 1000)}:R>`,
      inline: true,
    });
  if (t.usage && budgetTokens(t.usage) > 0) e.addFields({ name: 'Tokens', value: usageText(t.usage) });
  if (t.budgetNotice) e.addFields({ name: 'Model budget', value: t.budgetNotice.slice(0, 1000) });
  if (t.summary) e.addFields({ name: 'Result', value: t.summary.result.slice(0, 1000) || '(empty)' });
  if (t.repo)
    e.addFields({
      name: 'Repository',
      value: `${t.repo.owner}/${t.repo.name} on \`${t.repo.branch}\`${t.repo.base ? ` (from ${t.repo.base})` : ''}`,
      inline: true,
    });
  if (t.pullRequest)
    e.addFields({
      name: 'Pull request',
      value: `[#${t.pullRequest.number}](${t.pullRequest.url})${t.pullRequestLast?.stat ? ` — ${diffStatText(t.pullRequestLast.stat)}` : ''}`,
      inline: true,
    });
  if (t.error) e.addFields({ name: 'Error', value: t.error.slice(0, 1000) });
  return e;
}

/** What came of a push-and-open, for the thread: the link and what the pull request holds. */
export function pullRequestLine(o: PullRequestOutcome): string {
  const after = o.trigger === 'turn' && o.turn !== undefined ? ` after turn ${o.turn}` : '';
  const stat = o.stat ? ` — ${diffStatText(o.stat)}` : '';
  switch (o.kind) {
    case 'opened':
    case 'updated':
      return `Pull request ${o.kind}${after}: [#${o.number}](${o.url}) from \`${o.branch}\`${stat}.`;
    case 'nothing':
      return `No pull request${after}: \`${o.branch}\` has no change against its base.`;
    case 'failed':
      return `The pull request could not be opened${after}: ${(o.error ?? 'no reason given').slice(0, 1500)}`;
  }
}

/** The coding loop's button (issue 20): pushes the task's branch and opens its pull request. */
export function pullRequestButtons(taskId: string): ActionRowBuilder<ButtonBuilder> {
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder()
      .setCustomId(`${BUTTON.pr}${taskId}`)
      .setStyle(ButtonStyle.Success)
      .setLabel('Open pull request'),
  );
}

/**
 * The task's buttons. The terminal link is left out if Discord would refuse it (not http(s), or
 * longer than a link button takes): the start-up check says so once, and the answer still goes.
 */
export function taskButtons(taskId: string, url?: string): ActionRowBuilder<ButtonBuilder> {
  const row = new ActionRowBuilder<ButtonBuilder>();
  if (url && url.length <= DISCORD.buttonUrlMax && /^https?:\/\//.test(url))
    row.addComponents(new ButtonBuilder().setStyle(ButtonStyle.Link).setLabel('Open terminal').setURL(url));
  row.addComponents(
    new ButtonBuilder()
      .setCustomId(`${BUTTON.resume}${taskId}`)
      .setStyle(ButtonStyle.Primary)
      .setLabel('Resume'),
    new ButtonBuilder().setCustomId(`${BUTTON.stop}${taskId}`).setStyle(ButtonStyle.Danger).setLabel('Stop'),
  );
  return row;
}

/** "number 3 in the queue (about 4 min)" */
export function queueLine(q: NonNullable<TaskView['queue']>): string {
  const about = q.estimateSeconds ? ` (about ${Math.max(1, Math.round(q.estimateSeconds / 60))} min)` : '';
  return `number ${q.position} in the queue${about}`;
}
