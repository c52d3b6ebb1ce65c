/**
 * What came of a push-and-open of a task's pull request (issue 20), as the task's row keeps it
 * for the thread and the page; and how a follow-up message asks for one. Pure.
 */
import type { DiffStat } from './diff.js';

export interface PullRequestOutcome {
  /** opened or updated: the pull request holds the branch; nothing: no change to open one for. */
  kind: 'opened' | 'updated' | 'nothing' | 'failed';
  /** Who asked: the owner (button, API, CLI, a follow-up), or the end of a headless turn. */
  trigger: 'asked' | 'turn';
  turn?: number;
  number?: number;
  url?: string;
  branch: string;
  /** What the pull request holds (the branch against its base). */
  stat?: DiffStat;
  error?: string;
}

const VERB = '(?:open|create|make|send|raise|submit|update|push)';
const PR = '(?:(?:a|the|an|my)\\s+)?(?:pull[\\s-]?request|PR)';

/** A message that is only the ask ("open a PR", "please create the pull request!", "/pr"): Lia does it, the agent is not asked. */
const BARE = new RegExp(
  `^\\s*(?:/pr|(?:please\\s+)?${VERB}\\s+${PR}(?:\\s+(?:now|please))?)\\s*[.!]*\\s*$`,
  'i',
);
/** A request that also asks for one ("fix the test, then open a PR"): opened when that turn ends. */
const WITHIN = new RegExp(
  `\\b${VERB}\\b[^.?!\\n]{0,40}?(?<![\\w/.-])(?:pull[\\s-]?request|PR)(?![\\w/-]|\\.\\w)`,
  'i',
);

export function isBarePullRequestAsk(text: string): boolean {
  return text.length <= 100 && BARE.test(text);
}

export function asksForPullRequest(text: string): boolean {
  return isBarePullRequestAsk(text) || WITHIN.test(text);
}
