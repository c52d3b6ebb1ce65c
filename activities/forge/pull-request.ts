/**
 * The host's side of the coding loop on the forge: it opens (or updates) a task's pull request
 * and comments on it. It pushes nothing — the guest's git pushes the task's branch through the
 * egress proxy (vm/egress/forge.ts), which allows that branch only. The same client talks to
 * GitHub and to the forge stand-in (Octokit, pointed at `LIA__FORGE__API_URL`).
 */
import { Octokit } from '@octokit/rest';

export interface ForgeClientOptions {
  /** The REST API, e.g. https://api.github.com or https://ghe.example/api/v3 */
  apiUrl: string;
  token: string;
  /** Per request (the whole exchange). */
  timeoutMs?: number;
}

export interface PullRequestInput {
  owner: string;
  repo: string;
  /** The task's branch (without refs/heads/). */
  head: string;
  base: string;
  title: string;
  body: string;
  draft?: boolean;
}

export interface PullRequestRef {
  number: number;
  url: string;
  /** False: an open pull request for the branch existed and was updated. */
  created: boolean;
}

/** What went wrong, said so that a user or an operator knows what to do. */
export class ForgeError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    /** Trying again may help (network, 5xx, rate limit). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ForgeError';
  }
}

/** GitHub limits a pull request's body to 65,536 characters. */
const BODY_MAX = 65_000;
const TITLE_MAX = 256;

export interface PullRequestBodyInput {
  taskId: string;
  summary?: string;
  prompt: string;
  /** Link to the task's page (no secret in it: the pull request may be public). */
  taskUrl?: string;
  tokens?: number;
  costUsd?: number;
  /** A forge login: "requested by @login". */
  requestedBy?: string;
}

/** The pull request's body: the summary, the prompt (quoted), a link to the task, tokens and cost. */
export function pullRequestBody(i: PullRequestBodyInput): string {
  const quote = (s: string) =>
    s
      .replace(/\r\n?/g, '\n')
      .split('\n')
      .map((l) => `> ${l}`)
      .join('\n');
  const parts = [`## Summary\n\n${(i.summary ?? '').trim() || '_The agent left no summary._'}`];
  parts.push(`## Prompt\n\n${quote(i.prompt.slice(0, 20_000))}`);
  const facts = [`Lia task \`${i.taskId}\``];
  if (i.requestedBy) facts.push(`requested by @${i.requestedBy}`);
  if (i.taskUrl) facts.push(`[open the task](${i.taskUrl})`);
  if (i.tokens !== undefined) facts.push(`${i.tokens.toLocaleString('en-US')} tokens`);
  if (i.costUsd !== undefined) facts.push(`$${i.costUsd.toFixed(2)}`);
  parts.push(`---\n${facts.join(' · ')}`);
  const body = parts.join('\n\n');
  return body.length > BODY_MAX ? `${body.slice(0, BODY_MAX)}\n\n…(cut)` : body;
}

/** A title from the prompt's first line. */
export function pullRequestTitle(prompt: string): string {
  const first = (prompt.split('\n').find((l) => l.trim()) ?? 'Lia task').trim();
  return first.length > 72 ? `${first.slice(0, 71)}…` : first;
}

interface HttpError {
  status?: number;
  message?: string;
  response?: { data?: { message?: string; errors?: { message?: string; code?: string; field?: string }[] } };
}

export class ForgeClient {
  private readonly octokit: Octokit;

  constructor(o: ForgeClientOptions) {
    this.octokit = new Octokit({
      auth: o.token,
      baseUrl: o.apiUrl.replace(/\/$/, ''),
      userAgent: 'lia-coding-loop',
      request: { timeout: o.timeoutMs ?? 30_000 },
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    });
  }

  /**
   * Opens the task's pull request, or — when one is already open for its branch (GitHub's 422
   * "A pull request already exists") — updates that one's title and body.
   */
  async openOrUpdate(i: PullRequestInput): Promise<PullRequestRef> {
    const title = i.title.slice(0, TITLE_MAX);
    const body = i.body.slice(0, BODY_MAX);
    try {
      const r = await this.octokit.rest.pulls.create({
        owner: i.owner,
        repo: i.repo,
        head: i.head,
        base: i.base,
        title,
        body,
        draft: i.draft,
      });
      return { number: r.data.number, url: r.data.html_url, created: true };
    } catch (err) {
      const e = err as HttpError;
      const exists =
        e.status === 422 &&
        (e.response?.data?.errors ?? []).some((x) => /pull request already exists/i.test(x.message ?? ''));
      if (!exists) throw this.explain(err, i);
    }
    try {
      const open = await this.octokit.rest.pulls.list({
        owner: i.owner,
        repo: i.repo,
        head: `${i.owner}:${i.head}`,
        base: i.base,
        state: 'open',
        per_page: 1,
      });
      const pr = open.data[0];
      if (!pr)
        throw new ForgeError(
          'the forge says a pull request exists for the branch, yet lists none',
          422,
          true,
        );
      const r = await this.octokit.rest.pulls.update({
        owner: i.owner,
        repo: i.repo,
        pull_number: pr.number,
        title,
        body,
      });
      return { number: r.data.number, url: r.data.html_url, created: false };
    } catch (err) {
      throw err instanceof ForgeError ? err : this.explain(err, i);
    }
  }

  /** The repository's default branch (a task spawned without a base branch opens its PR there). */
  async defaultBranch(owner: string, repo: string): Promise<string> {
    try {
      const r = await this.octokit.rest.repos.get({ owner, repo });
      return r.data.default_branch;
    } catch (err) {
      throw this.explain(err, { owner, repo });
    }
  }

  /** Assigns the pull request (to the forge login of the user who asked for the task). */
  async assign(owner: string, repo: string, number: number, logins: string[]): Promise<void> {
    try {
      await this.octokit.rest.issues.addAssignees({ owner, repo, issue_number: number, assignees: logins });
    } catch (err) {
      throw this.explain(err, { owner, repo });
    }
  }

  /** Adds a comment to the pull request (e.g. "pushed again after a follow-up"). */
  async comment(owner: string, repo: string, number: number, body: string): Promise<{ url: string }> {
    try {
      const r = await this.octokit.rest.issues.createComment({
        owner,
        repo,
        issue_number: number,
        body: body.slice(0, BODY_MAX),
      });
      return { url: r.data.html_url };
    } catch (err) {
      throw this.explain(err, { owner, repo });
    }
  }

  private explain(
    err: unknown,
    i: { owner: string; repo: string; head?: string; base?: string },
  ): ForgeError {
    const e = err as HttpError;
    const name = `${i.owner}/${i.repo}`;
    const detail = (e.response?.data?.errors ?? [])
      .map((x) => x.message ?? [x.field, x.code].filter(Boolean).join(' '))
      .join('; ');
    switch (e.status) {
      case 401:
        return new ForgeError(
          "the forge refused the host's token (LIA__FORGE__TOKEN): bad credentials",
          401,
          false,
        );
      case 403:
        return new ForgeError(
          `the host's forge token may not do this on ${name} (it needs pull requests: write)${e.response?.data?.message ? `: ${e.response.data.message}` : ''}`,
          403,
          /rate limit/i.test(e.response?.data?.message ?? ''),
        );
      case 404:
        return new ForgeError(
          `the forge has no repository ${name}, or the host's token cannot see it`,
          404,
          false,
        );
      case 422:
        return new ForgeError(
          `the forge refused the pull request${i.head ? ` from ${i.head} into ${i.base}` : ''}: ${detail || e.response?.data?.message || 'validation failed'}`,
          422,
          false,
        );
      default: {
        const status = e.status;
        return new ForgeError(
          `the forge could not be reached or failed${status ? ` (${status})` : ''}: ${(e.message ?? String(err)).slice(0, 300)}`,
          status,
          true,
        );
      }
    }
  }
}

/** The client as configured (LIA__FORGE__*); undefined when no token is configured. */
export function forgeClientFromConfig(config: {
  forge: { api_url: string; token?: string };
}): ForgeClient | undefined {
  return config.forge.token
    ? new ForgeClient({ apiUrl: config.forge.api_url, token: config.forge.token })
    : undefined;
}

export interface TaskPullRequestInput {
  taskId: string;
  owner: string;
  repo: string;
  /** The task's branch, as the proxy allows it (setTaskRepo). */
  branch: string;
  base: string;
  prompt: string;
  summary?: string;
  taskUrl?: string;
  tokens?: number;
  costUsd?: number;
  /** The forge login of the user who spawned the task (LIA__FORGE__USER_LOGINS): named and assigned. */
  requestedBy?: string;
}

/**
 * Opens or updates the task's pull request (the host activity in open-pr.ts calls it after the
 * guest pushed the branch). It pushes nothing. The pull request is the host token's; with a
 * login for the task's user it names them and is assigned to them — an assignment the forge
 * refuses does not undo the pull request (`assignError` says why).
 */
export async function openTaskPullRequest(
  client: ForgeClient,
  i: TaskPullRequestInput,
): Promise<PullRequestRef & { assignError?: string }> {
  const pr = await client.openOrUpdate({
    owner: i.owner,
    repo: i.repo,
    head: i.branch,
    base: i.base,
    title: pullRequestTitle(i.prompt),
    body: pullRequestBody({
      taskId: i.taskId,
      summary: i.summary,
      prompt: i.prompt,
      taskUrl: i.taskUrl,
      tokens: i.tokens,
      costUsd: i.costUsd,
      requestedBy: i.requestedBy,
    }),
  });
  if (!i.requestedBy) return pr;
  try {
    await client.assign(i.owner, i.repo, pr.number, [i.requestedBy]);
    return pr;
  } catch (err) {
    return { ...pr, assignError: (err as Error).message };
  }
}
