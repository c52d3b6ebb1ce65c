/**
 * A stand-in for the Anthropic Messages API on loopback, for the real Claude Code CLI: POST
 * /v1/messages (JSON, or server-sent events when `stream` is set) and /v1/messages/count_tokens,
 * with Anthropic's error shapes. It checks the key of every request against the one configured on
 * the host, and follows a script: the agent's first turn gets a tool call, the turn that carries
 * its result gets a final answer; side requests (titles, summaries) get a short text. Or, given
 * `'script'` for the tool, it follows the directives in the conversation (./tool-script.ts).
 */
import http from 'node:http';
import type net from 'node:net';
import { scriptedReply } from './tool-script.js';

export interface ToolCall {
  name: string;
  input: Record<string, unknown>;
}

export interface ModelRequestRecord {
  path: string;
  key: string;
  model?: string;
  stream: boolean;
  hasTools: boolean;
  kind: 'tool_call' | 'final' | 'side' | 'refused';
}

type Block = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: unknown };

export class ModelStandIn {
  readonly requests: ModelRequestRecord[] = [];
  readonly usage = { input: 1200, output: 80 };
  private server = http.createServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(
    public key: string,
    private readonly tool: ToolCall | 'script',
    private readonly finalText = 'Done: the file is written.',
  ) {}

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const key = String(req.headers['x-api-key'] ?? req.headers.authorization?.replace(/^Bearer /, '') ?? '');
    const error = (status: number, type: string, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${Date.now()}` });
      res.end(JSON.stringify({ type: 'error', error: { type, message } }));
    };
    let body: Record<string, unknown> = {};
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    } catch {
      return error(400, 'invalid_request_error', 'the body is not JSON');
    }
    const rec: ModelRequestRecord = {
      path: url.pathname,
      key,
      model: body.model as string | undefined,
      stream: body.stream === true,
      hasTools: Array.isArray(body.tools) && body.tools.length > 0,
      kind: 'side',
    };
    this.requests.push(rec);
    if (key !== this.key) {
      rec.kind = 'refused';
      return error(401, 'authentication_error', 'invalid x-api-key');
    }
    if (req.method === 'POST' && url.pathname === '/v1/messages/count_tokens')
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ input_tokens: 42 }));
    if (req.method !== 'POST' || url.pathname !== '/v1/messages')
      return error(404, 'not_found_error', `no route ${req.method} ${url.pathname}`);

    const messages = (body.messages ?? []) as { role: string; content: unknown }[];
    const last = messages[messages.length - 1];
    const lastHasToolResult =
      Array.isArray(last?.content) &&
      (last.content as { type: string }[]).some((b) => b.type === 'tool_result');
    const tool = this.tool;
    let blocks: Block[];
    if (tool === 'script' && rec.hasTools) {
      const system = Array.isArray(body.system)
        ? (body.system as { text?: string }[]).map((b) => b.text ?? '').join('\n')
        : String(body.system ?? '');
      const r = scriptedReply(messages as never, system);
      rec.kind = r.kind;
      blocks = r.blocks;
    } else if (
      tool !== 'script' &&
      rec.hasTools &&
      JSON.stringify(body.tools ?? []).includes(`"${tool.name}"`) &&
      !lastHasToolResult
    ) {
      rec.kind = 'tool_call';
      blocks = [
        { type: 'text', text: 'I will write the file now.' },
        { type: 'tool_use', id: `toolu_${Date.now()}`, name: tool.name, input: tool.input },
      ];
    } else if (rec.hasTools) {
      rec.kind = 'final';
      blocks = [{ type: 'text', text: this.finalText }];
    } else {
      blocks = [{ type: 'text', text: 'Lia test' }];
    }
    const model = String(body.model ?? 'claude-sonnet-4-5');
    const stopReason = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
    const id = `msg_${Date.now()}${Math.random().toString(36).slice(2, 8)}`;
    if (!rec.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          type: 'message',
          role: 'assistant',
          model,
          content: blocks,
          stop_reason: stopReason,
          stop_sequence: null,
          usage: { input_tokens: this.usage.input, output_tokens: this.usage.output },
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = (type: string, data: Record<string, unknown>) =>
      res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    event('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: this.usage.input, output_tokens: 1 },
      },
    });
    blocks.forEach((b, index) => {
      if (b.type === 'text') {
        event('content_block_start', { index, content_block: { type: 'text', text: '' } });
        for (const piece of b.text.match(/.{1,12}/gs) ?? [])
          event('content_block_delta', { index, delta: { type: 'text_delta', text: piece } });
      } else {
        event('content_block_start', {
          index,
          content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} },
        });
        event('content_block_delta', {
          index,
          delta: { type: 'input_json_delta', partial_json: JSON.stringify(b.input) },
        });
      }
      event('content_block_stop', { index });
    });
    event('message_delta', {
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: this.usage.output },
    });
    event('message_stop', {});
    res.end();
  }
}
