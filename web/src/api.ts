/** The page's API client: the signed link's token authenticates every call. */

// The server's own definitions of what it sends (types only: nothing of the server is bundled).
export type {
  AnswerResponse,
  Choice,
  ConversationView,
  DecisionView,
  DiffView,
  FollowUpResponse,
  QuestionView,
  StreamServerMessage,
  TaskListResponse,
  TaskStatus,
  TaskView,
  TurnView,
} from '../../api/types';

const KEY = 'lia-token';

/**
 * Takes the token from the link (`#token=…`) once, then keeps it for this tab only
 * (sessionStorage), and takes it out of the address bar so it is not shared by copying the URL.
 */
export function token(): string | null {
  const m = /[#&]token=([^&]+)/.exec(window.location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]!));
    history.replaceState(null, '', window.location.pathname);
  }
  return sessionStorage.getItem(KEY);
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
  /** The link is expired, forged or for another task, or the task is gone: retrying won't help. */
  get fatal(): boolean {
    return this.status === 401 || this.status === 403 || this.status === 404;
  }
}

/**
 * Server clock minus this browser's clock (ms), from the `Date` header: idle deadlines are the
 * server's epoch ms, and a browser clock that is off would show a wrong countdown.
 */
let clockSkew = 0;
export const serverNow = () => Date.now() + clockSkew;

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const sent = Date.now();
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token() ?? ''}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const date = Date.parse(res.headers.get('date') ?? '');
  // The header has 1 s resolution: only correct skews larger than that.
  if (!Number.isNaN(date)) {
    const skew = date - (sent + Date.now()) / 2;
    clockSkew = Math.abs(skew) > 2000 ? skew : 0;
  }
  const answer = await res.json().catch(() => ({}));
  if (!res.ok)
    throw new ApiError(answer?.error?.message ?? `${method} ${path}: HTTP ${res.status}`, res.status);
  return answer as T;
}

/** A task's page on this origin, with the task's own link token (a token opens one task only). */
export function taskHref(t: { id: string; url?: string }): string {
  const hash = t.url ? new URL(t.url).hash : '';
  return `/tasks/${t.id}${hash}`;
}
