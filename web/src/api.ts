/** The page's API client: the signed link's token authenticates every call. */

export type TaskStatus = 'pending' | 'starting' | 'running' | 'suspended' | 'terminated' | 'failed';

export interface TaskView {
  id: string;
  status: TaskStatus;
  runtime: string;
  promptFirstLine: string;
  driver: string | null;
  acceleration: string | null;
  error: string | null;
  idleDeadline?: number;
  usage?: { inputTokens: number; outputTokens: number; costUsd: number };
}

const KEY = 'lia-token';

/** Takes the token from the link (`#token=…`) once, then keeps it for this tab. */
export function token(): string | null {
  const m = /[#&]token=([^&]+)/.exec(window.location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]!));
    history.replaceState(null, '', window.location.pathname);
  }
  return sessionStorage.getItem(KEY);
}

export class ApiError extends Error {}

export async function api<T>(method: string, path: string): Promise<T> {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token() ?? ''}` },
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(body?.error?.message ?? `${method} ${path}: HTTP ${res.status}`);
  return body as T;
}
