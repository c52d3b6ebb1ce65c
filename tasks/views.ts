/** A task's row as callers see it (common/task-view.ts). */
import { claudeSessionId } from '../common/claude-session.js';
import type { TaskRow } from '../common/db/tasks.js';
import type { TaskView } from '../common/task-view.js';

export type { TaskView } from '../common/task-view.js';

export function toView(row: TaskRow): TaskView {
  return {
    id: row.id,
    owner: row.owner,
    runtime: row.runtime,
    status: row.status,
    promptFirstLine: row.promptFirstLine,
    hostId: row.hostId,
    driver: row.driver,
    acceleration: row.acceleration,
    error: row.error,
    exitCode: row.exitCode,
    permissionMode: row.permissionMode,
    conversationAt: row.conversationAt ? row.conversationAt.getTime() : null,
    openQuestions: row.openQuestions,
    ...(row.runtime === 'claude-headless' && row.permissionMode
      ? { sessionId: claudeSessionId(row.id) }
      : {}),
    usage: {
      inputTokens: row.inputTokens,
      outputTokens: row.outputTokens,
      cacheReadTokens: row.cacheReadTokens,
      cacheCreationTokens: row.cacheCreationTokens,
      costUsd: row.costUsd,
    },
    budgetNotice: row.budgetNotice,
    summary: row.summary,
    ...(row.vmStart ? { vmStart: row.vmStart } : {}),
    ...(row.status === 'running' && row.idleDeadline ? { idleDeadline: row.idleDeadline.getTime() } : {}),
    ...(row.repoOwner && row.repoName
      ? {
          repo: {
            owner: row.repoOwner,
            name: row.repoName,
            ...(row.repoBase ? { base: row.repoBase } : {}),
            branch: `lia/${row.id}`,
          },
        }
      : {}),
    ...(row.prUrl && row.prNumber ? { pullRequest: { url: row.prUrl, number: row.prNumber } } : {}),
    ...(row.prLast ? { pullRequestLast: row.prLast, pullRequestEvents: row.prEvents ?? 0 } : {}),
    ...(row.repoOwner ? { autoPullRequest: !!row.autoPr } : {}),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
