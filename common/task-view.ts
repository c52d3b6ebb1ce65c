/**
 * A task as callers see it (REST, the bot, the web page): the one definition of the API's task
 * shape. Types only: the web page imports it through api/types.ts.
 */
import type { PullRequestOutcome } from './pull-request.js';
import type { HeadlessSummary, TaskFields, TokenCounts } from './task.js';

export interface TaskView extends TaskFields {
  /**
   * Tokens counted by the host's egress proxy, and their estimated cost in US dollars.
   * `inputTokens` is the uncached input: the whole input adds the cache reads and writes.
   */
  usage: TokenCounts & { costUsd: number };
  /** Why the task's model calls are refused (a token budget is spent), while they are. */
  budgetNotice: string | null;
  /** The end of a headless run: its final answer and turns. */
  summary: HeadlessSummary | null;
  createdAt: string;
  updatedAt: string;
  /** Epoch ms at which the idle timer suspends the task (running tasks; the workflow projects it). */
  idleDeadline?: number;
  /** The forge repository the task works on (on branch `lia/<id>`), and its pull request once opened. */
  repo?: { owner: string; name: string; base?: string; branch: string };
  pullRequest?: { url: string; number: number };
  /**
   * What came of the last push-and-open (opened, updated, nothing to open, failed — with the
   * stat of what the pull request holds), and how many there were (the thread posts each once).
   */
  pullRequestLast?: PullRequestOutcome;
  pullRequestEvents?: number;
  /** A pull request after every headless turn that changed the repository. */
  autoPullRequest?: boolean;
  /** A pending task waiting for a host with room: its place (1 = next) and, when known, a guess of the wait. */
  queue?: { position: number; estimateSeconds?: number };
  /**
   * Epoch ms of the last change to its questions, decisions or turns (null: none yet): a reader
   * that shows them (GET /tasks/{id}/conversation) reads them again when it moves.
   */
  conversationAt: number | null;
  /** Questions waiting for the owner's answer. */
  openQuestions: number;
  /** The Claude Code session every turn of a headless conversation continues. */
  sessionId?: string;
  /** How its VM was started: `template <key>`, `cold boot`, or `cold boot: <why the template failed>`. */
  vmStart?: string;
}
