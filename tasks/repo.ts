/** A spawn's repository, checked against the operator's forge configuration (issue 20). */
import type { Config } from '../common/config.js';
import { type RepoSpec, resolveRepo } from '../common/repo.js';
import { TaskError } from './errors.js';

export function checkRepo(t: { repo?: string; branch?: string }, config: Config): RepoSpec | undefined {
  if (!t.repo) {
    if (t.branch) throw new TaskError('invalid', 'branch needs repo (the repository to check out)');
    return undefined;
  }
  const r = resolveRepo({ repo: t.repo, branch: t.branch }, config.forge);
  if (typeof r === 'string') throw new TaskError('invalid', r);
  return r;
}

/** The allowlist's entries that match what a user typed so far (for autocomplete). */
export function repoChoices(config: Config, typed: string, max = 25): string[] {
  if (!config.forge.token) return [];
  const q = typed.trim().toLowerCase();
  return config.forge.allow_repos.filter((e) => e.toLowerCase().includes(q)).slice(0, max);
}
