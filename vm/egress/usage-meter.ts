/**
 * Reads the token usage out of a model API response as it streams past the proxy, without
 * touching what the guest receives: server-sent events (`message_start` carries the input
 * tokens, the last `message_delta` the output tokens) or a JSON message. The host counts tokens
 * itself, so a guest cannot under-report them.
 */
import type http from 'node:http';
import zlib from 'node:zlib';

export interface ModelUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

interface RawUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

const MAX_JSON_BYTES = 8 * 1024 * 1024;

/** Calls `done` once with the usage of this response (or nothing when it has none). */
export function meterResponse(
  res: http.IncomingMessage,
  done: (u: ModelUsage | undefined, body: string) => void,
) {
  const encoding = String(res.headers['content-encoding'] ?? '').toLowerCase();
  const decoded =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? res.pipe(zlib.createGunzip())
      : encoding === 'br'
        ? res.pipe(zlib.createBrotliDecompress())
        : encoding === 'deflate'
          ? res.pipe(zlib.createInflate())
          : res;
  const sse = String(res.headers['content-type'] ?? '').includes('text/event-stream');
  let model = '';
  const usage: RawUsage = {};
  let buffered = '';
  let body = '';
  const take = (u: RawUsage | undefined) => {
    if (!u) return;
    for (const k of Object.keys(u) as (keyof RawUsage)[]) if (typeof u[k] === 'number') usage[k] = u[k];
  };
  const onEvent = (data: string) => {
    try {
      const e = JSON.parse(data) as {
        type?: string;
        message?: { model?: string; usage?: RawUsage };
        usage?: RawUsage;
      };
      if (e.type === 'message_start') {
        model = e.message?.model ?? model;
        take(e.message?.usage);
      } else if (e.type === 'message_delta') take(e.usage);
    } catch {
      // Not JSON: not a usage event.
    }
  };
  decoded.on('data', (chunk: Buffer) => {
    if (!sse) {
      if (body.length < MAX_JSON_BYTES) body += chunk.toString('utf8');
      return;
    }
    buffered += chunk.toString('utf8');
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl).replace(/\r$/, '');
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('data:')) onEvent(line.slice(5).trim());
      nl = buffered.indexOf('\n');
    }
  });
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    if (!sse && body) {
      try {
        const m = JSON.parse(body) as { model?: string; usage?: RawUsage };
        model = m.model ?? model;
        take(m.usage);
      } catch {
        // Not a JSON message.
      }
    }
    const has = usage.input_tokens !== undefined || usage.output_tokens !== undefined;
    done(
      has
        ? {
            model,
            inputTokens: usage.input_tokens ?? 0,
            outputTokens: usage.output_tokens ?? 0,
            cacheReadTokens: usage.cache_read_input_tokens ?? 0,
            cacheCreationTokens: usage.cache_creation_input_tokens ?? 0,
          }
        : undefined,
      body,
    );
  };
  decoded.on('end', finish);
  decoded.on('error', finish);
  res.on('close', finish);
}
