/**
 * What of the model API a guest may use through the proxy, and how its requests and the answers
 * are rewritten. Claude Code (the version the image pins) calls `POST /v1/messages?beta=true` for
 * every model call, `POST /v1/messages/count_tokens?beta=true` for some features, and
 * `HEAD /api/hello` to warm the connection (answered here; it needs nothing of the API). Nothing
 * else is forwarded with the key: not the Files, Batches, Models or admin APIs, whose objects are
 * the whole workspace's.
 */
import type http from 'node:http';
import { METERED_ENCODINGS } from './usage-meter.js';

export interface ModelRoute {
  method: string;
  path: string;
  /** Answers carry usage and cost money: the budget gate is asked first. */
  metered: boolean;
}

export const MODEL_ROUTES: readonly ModelRoute[] = [
  { method: 'POST', path: '/v1/messages', metered: true },
  { method: 'POST', path: '/v1/messages/count_tokens', metered: false },
];

/** Query parameters Claude Code puts on those routes (`?beta=true`); any other is refused. */
const QUERY_VALUES: Record<string, readonly string[]> = { beta: ['true', 'false'] };

export type RouteDecision =
  | { kind: 'forward'; route: ModelRoute; pathAndQuery: string }
  | { kind: 'hello' }
  | { kind: 'refused'; message: string };

const ALLOWED_TEXT = MODEL_ROUTES.map((r) => `${r.method} ${r.path}`).join(', ');

/** The decision for a path-only request from a guest. The path is compared as sent: no decoding. */
export function modelRoute(method: string | undefined, rawUrl: string | undefined): RouteDecision {
  const m = (method ?? '').toUpperCase();
  const url = rawUrl ?? '';
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const query = q >= 0 ? url.slice(q + 1) : '';
  if (m === 'HEAD' && path === '/api/hello' && !query) return { kind: 'hello' };
  const shown = `${m} ${path.slice(0, 200)}`;
  const refused = (why: string): RouteDecision => ({
    kind: 'refused',
    message: `Lia: the egress proxy does not forward ${shown} to the model API (${why}); it forwards only ${ALLOWED_TEXT}`,
  });
  const route = MODEL_ROUTES.find((r) => r.path === path);
  if (!route) return refused('not a route Claude Code needs');
  if (route.method !== m) return refused(`${m} is not allowed there`);
  if (query) {
    const params = new URLSearchParams(query);
    for (const [k, v] of params) {
      if (!QUERY_VALUES[k]?.includes(v)) return refused(`query parameter ${k.slice(0, 40)} is not allowed`);
    }
  }
  return { kind: 'forward', route, pathAndQuery: query ? `${path}?${query}` : path };
}

const HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/** Never from a guest to the model API: credentials (the proxy adds its own), cookies, forwarding hints. */
const DROPPED_TO_MODEL = new Set([
  'x-api-key',
  'authorization',
  'cookie',
  'host',
  'accept-encoding',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);
/** Betas that reach objects of the whole workspace (uploaded files), which a task has no business with. */
const DROPPED_BETAS = /^files-api-/i;

/**
 * What the model API is asked to compress with: the encodings the guest accepts that the meter
 * reads (gzip, deflate, br — never zstd), else identity. The guest then gets an encoding it
 * asked for, and the meter can read every answer.
 */
export function upstreamAcceptEncoding(guest: string | string[] | undefined): string {
  const text = Array.isArray(guest) ? guest.join(',') : (guest ?? '');
  const accepted = new Set<string>();
  let star = false;
  for (const part of text.toLowerCase().split(',')) {
    const [name, ...params] = part.split(';').map((s) => s.trim());
    if (!name) continue;
    const q = params.find((p) => p.startsWith('q='));
    if (q && !(Number(q.slice(2)) > 0)) continue;
    if (name === '*') star = true;
    else accepted.add(name === 'x-gzip' ? 'gzip' : name);
  }
  const usable = METERED_ENCODINGS.filter((e) => star || accepted.has(e));
  return usable.length ? usable.join(', ') : 'identity';
}

/** The headers of a guest's model request as they go to the model API. */
export function modelRequestHeaders(
  guest: http.IncomingHttpHeaders,
  apiKey: string,
  modelHost: string,
): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(guest)) {
    if (v === undefined || HOP_HEADERS.has(k) || DROPPED_TO_MODEL.has(k) || k.startsWith('proxy-')) continue;
    out[k] = v;
  }
  const betas = guest['anthropic-beta'];
  if (betas !== undefined) {
    const kept = (Array.isArray(betas) ? betas.join(',') : betas)
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b && !DROPPED_BETAS.test(b));
    if (kept.length) out['anthropic-beta'] = kept.join(',');
    else delete out['anthropic-beta'];
  }
  out.host = modelHost;
  out['x-api-key'] = apiKey;
  out['accept-encoding'] = upstreamAcceptEncoding(guest['accept-encoding']);
  return out;
}

/** An answer's headers as they go back to the guest (the body is forwarded byte for byte). */
export function responseHeaders(upstream: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(upstream)) {
    if (v === undefined || HOP_HEADERS.has(k) || k.startsWith('proxy-')) continue;
    out[k] = v;
  }
  return out;
}

/** Request headers for an allowed plain-HTTP host: as sent, less hop-by-hop and proxy headers. */
export function forwardHeaders(guest: http.IncomingHttpHeaders, host: string): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(guest)) {
    if (v === undefined || HOP_HEADERS.has(k) || k.startsWith('proxy-') || k === 'host') continue;
    out[k] = v;
  }
  out.host = host;
  return out;
}

/** The message of an Anthropic-shaped error body, or its first 200 characters. */
export function modelErrorMessage(body: string): string {
  try {
    const e = JSON.parse(body) as { error?: { message?: string } };
    if (typeof e.error?.message === 'string' && e.error.message) return e.error.message.slice(0, 500);
  } catch {
    // Not the API's error shape.
  }
  return body.slice(0, 200) || 'no message';
}

/** An Anthropic-shaped error body: what Claude Code parses and shows. */
export function errorBody(type: string, message: string): string {
  return JSON.stringify({ type: 'error', error: { type, message } });
}
