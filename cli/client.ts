/**
 * Lia's REST API, as one user through the service token (docs/api.md). Every failure becomes a
 * CliError that says what happened and what to do (errors.ts).
 */
import type { DiffView, PullRequestResult, TaskListResponse, TaskStatus, TaskView } from '../api/types.js';
import type { Connection } from './connection.js';
import { type Asked, apiError, unreachable } from './errors.js';

/** POST /api/v1/tasks's answer. */
export interface Created {
  taskId: string;
  url: string;
  status: TaskStatus;
}

export type { TaskWithLink } from '../api/types.js';

export interface NewTask {
  prompt: string;
  runtime?: string;
  idleTimeoutSeconds?: number;
  files?: { name: string; content: string }[];
  /** A forge repository to check out on lia/<task id> (owner/name or URL), and its base branch. */
  repo?: string;
  branch?: string;
  /** A headless task: the pull request after every turn that changed the repository (default: Lia's setting). */
  autoPullRequest?: boolean;
}

/** Raw output and where it stands in the log (the x-lia-* headers of ?format=raw). */
export interface RawOutput {
  bytes: Buffer;
  fromSeq: number;
  nextSeq: number;
  firstAvailableSeq: number;
  truncated: boolean;
  /** More output follows: ask again from nextSeq. */
  more: boolean;
}

const TIMEOUT_MS = 30_000;
/** A resume answers once the task runs again: a VM restore can take a while. */
const RESUME_TIMEOUT_MS = 5 * 60_000;

export class LiaClient {
  constructor(readonly conn: Connection) {}

  /** The headers of a service call; WebSockets send them too (never the token in a URL). */
  headers(): Record<string, string> {
    return { authorization: `Bearer ${this.conn.token}`, 'x-lia-user': this.conn.user };
  }

  create(task: NewTask): Promise<Created> {
    return this.json('POST', '/api/v1/tasks', { body: task });
  }

  list(all = false): Promise<TaskListResponse> {
    return this.json('GET', `/api/v1/tasks${all ? '?all=true' : ''}`, { admin: all });
  }

  /** The task; with `link`, a new link to its page (which revokes the older ones). */
  task(id: string, link = false): Promise<TaskView & { url?: string }> {
    return this.json('GET', `/api/v1/tasks/${id}${link ? '?link=true' : ''}`, { taskId: id });
  }

  resume(id: string): Promise<{ status: TaskStatus }> {
    return this.json('POST', `/api/v1/tasks/${id}/resume`, { taskId: id, timeoutMs: RESUME_TIMEOUT_MS });
  }

  /** The task's working tree against its base (fresh from a running task; else the last one taken). */
  diff(id: string, fresh = true): Promise<DiffView> {
    return this.json('GET', `/api/v1/tasks/${id}/diff${fresh ? '' : '?fresh=false'}`, {
      taskId: id,
      timeoutMs: 90_000,
    });
  }

  /** Pushes the task's branch and opens (or updates) its pull request (resumes it first if suspended). */
  pullRequest(id: string): Promise<PullRequestResult> {
    return this.json('POST', `/api/v1/tasks/${id}/pull-request`, {
      taskId: id,
      timeoutMs: RESUME_TIMEOUT_MS + 10 * 60_000,
    });
  }

  stop(id: string): Promise<{ message: string }> {
    return this.json('DELETE', `/api/v1/tasks/${id}`, { taskId: id });
  }

  async output(id: string, from = 1): Promise<RawOutput> {
    const res = await this.send('GET', `/api/v1/tasks/${id}/output?from=${from}&format=raw`, { taskId: id });
    const h = (name: string) => Number(res.headers.get(`x-lia-${name}`));
    return {
      bytes: Buffer.from(await res.arrayBuffer()),
      fromSeq: h('from-seq'),
      nextSeq: h('next-seq'),
      firstAvailableSeq: h('first-available-seq'),
      truncated: res.headers.get('x-lia-truncated') === 'true',
      more: res.headers.get('x-lia-more') === 'true',
    };
  }

  private async json<T>(method: string, route: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, route, opts);
    return (await res.json()) as T;
  }

  private async send(method: string, route: string, opts: RequestOptions): Promise<Response> {
    const asked: Asked = { route: `${method} ${route.split('?')[0]}`, taskId: opts.taskId };
    let res: Response;
    try {
      res = await fetch(`${this.conn.url}${route}`, {
        method,
        headers: {
          ...this.headers(),
          // A service is trusted to say its user is an admin (api/auth.ts): only for `list --all`.
          ...(opts.admin ? { 'x-lia-admin': 'true' } : {}),
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? TIMEOUT_MS),
      });
    } catch (err) {
      throw unreachable(this.conn, err);
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    throw apiError(this.conn, res.status, body, asked);
  }
}

interface RequestOptions {
  body?: unknown;
  taskId?: string;
  admin?: boolean;
  timeoutMs?: number;
}
