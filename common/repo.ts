/**
 * A task's forge repository (issue 20): how a user names it (owner/name or an https URL), the
 * branch the task works on, and the operator's allowlist. Pure: shared by the API, the bot, the
 * CLI's checks and the host activities.
 */

export interface RepoSpec {
  owner: string;
  repo: string;
  /** The branch the task starts from; undefined: the repository's default branch. */
  base?: string;
}

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;
/** A conservative branch name (git check-ref-format, and no surprises in a shell or a URL). */
const BRANCH = /^(?!\/|.*\/\/|.*\.\.|.*\/$|.*\.lock$|.*@\{)[A-Za-z0-9._/-]{1,200}$/;

/** The task's own branch: the only one its guest may push. */
export function taskBranch(taskId: string): string {
  return `lia/${taskId}`;
}

export function isValidBranch(name: string): boolean {
  return BRANCH.test(name) && !name.startsWith('-') && !name.startsWith('.');
}

/**
 * Parses `owner/name`, `https://<forge>/owner/name(.git)` or `<forge>/owner/name`; returns an
 * error message that says what to fix. `gitUrl` is the configured forge (LIA__FORGE__GIT_URL):
 * a URL on another host is refused.
 */
export function parseRepo(input: string, gitUrl: string): { owner: string; repo: string } | string {
  let s = input.trim();
  const forge = new URL(gitUrl);
  if (/^[a-z]+:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return `repo ${JSON.stringify(input.slice(0, 200))} is not a valid URL`;
    }
    if (u.host.toLowerCase() !== forge.host.toLowerCase())
      return `repo must be on ${forge.host} (the forge this Lia is configured for), not ${u.host}`;
    s = u.pathname.replace(/^\/+/, '');
  } else if (s.toLowerCase().startsWith(`${forge.host.toLowerCase()}/`)) {
    s = s.slice(forge.host.length + 1);
  }
  s = s.replace(/\/+$/, '').replace(/\.git$/, '');
  const parts = s.split('/');
  if (parts.length !== 2)
    return `repo ${JSON.stringify(input.slice(0, 200))}: give owner/name or https://${forge.host}/owner/name`;
  const [owner, repo] = parts as [string, string];
  if (!OWNER.test(owner) || !REPO.test(repo) || repo === '.' || repo === '..')
    return `repo ${JSON.stringify(input.slice(0, 200))} is not a valid owner/name`;
  return { owner, repo };
}

/** Whether owner/repo matches an allowlist entry (owner/name or owner/*), case-insensitively. */
export function repoOnAllowlist(allow: readonly string[], owner: string, repo: string): boolean {
  const o = owner.toLowerCase();
  const r = repo.toLowerCase();
  return allow.some((e) => {
    const [eo, er] = e.toLowerCase().split('/');
    return eo === o && (er === '*' || er === r);
  });
}

/**
 * Checks a spawn's repo and branch against the forge configuration: the repository, or an
 * error message (no forge configured, not on the allowlist, a bad name).
 */
export function resolveRepo(
  input: { repo: string; branch?: string },
  forge: { git_url: string; token?: string; allow_repos: readonly string[] },
): RepoSpec | string {
  if (!forge.token)
    return 'no forge is configured on this Lia (the operator sets LIA__FORGE__TOKEN and LIA__FORGE__ALLOW_REPOS), so a task cannot use a repository';
  const parsed = parseRepo(input.repo, forge.git_url);
  if (typeof parsed === 'string') return parsed;
  if (!repoOnAllowlist(forge.allow_repos, parsed.owner, parsed.repo))
    return `repository ${parsed.owner}/${parsed.repo} is not on this Lia's allowlist (LIA__FORGE__ALLOW_REPOS${forge.allow_repos.length ? `: ${forge.allow_repos.join(', ')}` : ' is empty'})`;
  if (input.branch !== undefined && !isValidBranch(input.branch))
    return `branch ${JSON.stringify(input.branch.slice(0, 200))} is not a valid branch name`;
  return { ...parsed, ...(input.branch ? { base: input.branch } : {}) };
}

/** The forge login configured for a Lia user (LIA__FORGE__USER_LOGINS `userId=login`), if any. */
export function forgeLoginOf(
  config: { forge: { user_logins: string[] } },
  userId: string,
): string | undefined {
  for (const e of config.forge.user_logins) {
    const i = e.indexOf('=');
    if (e.slice(0, i) === userId) return e.slice(i + 1);
  }
  return undefined;
}
