/**
 * GET /api/v1/tasks/{id}/stream?from=<seq> — the bidirectional terminal stream.
 *
 * Server → client: binary frames `u64 BE seq | bytes` (output, each seq exactly once and in
 * order from `from`), and JSON text frames: `hello`, `state` (on every change), `truncated`,
 * `ack`, `error`. Client → server: JSON text frames `{type:"input",data}`,
 * `{type:"resize",cols,rows}`, `{type:"ping"}`, or binary frames of raw input bytes.
 *
 * Input a client must not lose or double across reconnects: connect with `sender=<id>` (random,
 * kept for the page's life) and number each input, `{type:"input",data,seq}` (1, 2, …). The
 * server answers `{type:"ack",seq}` once it is stored (or refused with an `error` that says
 * why); after a reconnect the client sends again everything without an ack, and a number stored
 * before is not stored twice. Input that cannot be stored closes the socket (1011) before
 * anything after it is taken, so nothing is skipped.
 */

import { Hono } from 'hono';
import type { UpgradeWebSocket, WSContext } from 'hono/ws';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { Logger } from '../../common/logger.js';
import { metrics } from '../../common/metrics.js';
import { coalesced } from '../../common/rerun.js';
import { LIMITS, type TaskStatus } from '../../common/task.js';
import type { TaskBus } from '../../output/bus.js';
import { OutputFollower } from '../../output/follow.js';
import type { OutputLog } from '../../output/log.js';
import { TaskError, type TaskService, type TaskView } from '../../tasks/service.js';
import type { AuthEnv } from '../auth.js';
import { describeZodError, HttpError, invalid } from '../errors.js';
import { REVOKED } from '../task-scope.js';
import type { StreamServerMessage } from '../types.js';

const clientMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('input'),
    data: z.string().max(LIMITS.inputMaxBytes),
    seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  }),
  z.object({
    type: z.literal('resize'),
    cols: z.number().int().min(LIMITS.terminal.minCols).max(LIMITS.terminal.maxCols),
    rows: z.number().int().min(LIMITS.terminal.minRows).max(LIMITS.terminal.maxRows),
  }),
  z.object({ type: z.literal('ping') }),
]);

/** Above this many queued bytes on a socket, stop reading the log until the client catches up. */
const HIGH_WATER = 4 * 1024 * 1024;
const SENDER = /^[A-Za-z0-9_-]{8,64}$/;
/** Input a socket may have waiting to be stored; past it the socket is closed (its client resends). */
const INPUT_QUEUE_MAX_BYTES = 1024 * 1024;
/** Open sockets per task and per user, in one API process. */
export const SOCKETS_PER_TASK = 8;
export const SOCKETS_PER_USER = 32;

/** Open sockets by task and by user (this process's count). */
export class SocketCounter {
  private readonly byTask = new Map<string, number>();
  private readonly byUser = new Map<string, number>();
  count(taskId: string, userId: string) {
    return { task: this.byTask.get(taskId) ?? 0, user: this.byUser.get(userId) ?? 0 };
  }
  add(taskId: string, userId: string): () => void {
    const bump = (m: Map<string, number>, k: string, by: number) => {
      const n = (m.get(k) ?? 0) + by;
      if (n > 0) m.set(k, n);
      else m.delete(k);
    };
    bump(this.byTask, taskId, 1);
    bump(this.byUser, userId, 1);
    metrics.streamSockets.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      bump(this.byTask, taskId, -1);
      bump(this.byUser, userId, -1);
      metrics.streamSockets.dec();
    };
  }
}

export interface StreamDeps {
  sockets: SocketCounter;
  tasks: TaskService;
  output: OutputLog;
  bus: TaskBus;
  logger: Logger;
  upgradeWebSocket: UpgradeWebSocket<WebSocket>;
}

function stateMessage(v: TaskView): StreamServerMessage {
  return {
    type: 'state',
    status: v.status,
    idleDeadline: v.idleDeadline ?? null,
    error: v.error,
    exitCode: v.exitCode,
    driver: v.driver,
    acceleration: v.acceleration,
    queue: v.queue ?? null,
    conversationAt: v.conversationAt,
    openQuestions: v.openQuestions,
  };
}

export function streamRoutes(d: StreamDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    '/:id/stream',
    async (c, next) => {
      const from = c.req.query('from') ?? '1';
      if (!/^\d{1,15}$/.test(from))
        throw invalid('from must be the first seq wanted (a whole number; 0 or 1 = from the start)');
      const sender = c.req.query('sender');
      if (sender !== undefined && !SENDER.test(sender))
        throw invalid('sender must be 8 to 64 letters, digits, - or _ (one random id per client)');
      await d.tasks.authorized(c.get('caller'), c.get('taskId'));
      const open = d.sockets.count(c.get('taskId'), c.get('caller').userId);
      if (open.task >= SOCKETS_PER_TASK)
        throw new HttpError(
          429,
          'quota',
          `this task already has ${SOCKETS_PER_TASK} open terminals; close one first`,
        );
      if (open.user >= SOCKETS_PER_USER)
        throw new HttpError(
          429,
          'quota',
          `you already have ${SOCKETS_PER_USER} open terminals; close some first`,
        );
      await next();
    },
    d.upgradeWebSocket((c) => {
      const caller = c.get('caller');
      const id = c.get('taskId');
      const from = Math.max(1, Number(c.req.query('from') ?? '1'));
      const sender = c.req.query('sender');
      let ws: WSContext<WebSocket>;
      // Unknown until the first state read: input before that has the task service look it up.
      let status: TaskStatus | undefined;
      let closed = false;
      let lastState = '';
      let follower: OutputFollower | undefined;
      let inputChain: Promise<void> = Promise.resolve();
      let inputQueued = 0;
      let expiry: NodeJS.Timeout | undefined;
      let release = () => {};
      const closeWith = (code: number, reason: string) => {
        if (closed) return;
        sendJson({ type: 'error', message: reason });
        ws.close(code, reason.slice(0, 120));
      };

      const sendJson = (m: StreamServerMessage) => {
        if (!closed) ws.send(JSON.stringify(m));
      };
      const fail = (err: unknown) => {
        const message = err instanceof TaskError ? err.message : `internal error: ${(err as Error).message}`;
        if (!(err instanceof TaskError))
          d.logger.warn({ taskId: id, err: (err as Error).message }, 'stream error');
        sendJson({ type: 'error', message });
      };

      // Output: one follower per socket, from its own cursor; a slow client holds it back.
      const sendChunks = async (chunks: { seq: number; data: Buffer }[]) => {
        for (const ch of chunks) {
          if (closed) return;
          const frame = Buffer.allocUnsafe(8 + ch.data.length);
          frame.writeBigUInt64BE(BigInt(ch.seq), 0);
          ch.data.copy(frame, 8);
          ws.raw!.send(frame);
        }
        while (!closed && ws.raw!.bufferedAmount > HIGH_WATER) await new Promise((r) => setTimeout(r, 5));
      };

      // The state is the task's row, re-read when the bus says it changed (never a poll, never
      // a Temporal query); one read at a time, and one more if it changed meanwhile.
      const pushState = coalesced(async () => {
        if (closed) return;
        try {
          // A link that a newer link (or a stop) revoked holds this socket no longer.
          if (caller.via === 'link' && !(await d.tasks.linkCurrent(id, caller.linkIssuedAt ?? 0)))
            return closeWith(4001, REVOKED);
          const view = await d.tasks.get(caller, id);
          status = view.status;
          const m = stateMessage(view);
          const key = JSON.stringify(m);
          if (key !== lastState) {
            lastState = key;
            sendJson(m);
          }
        } catch (err) {
          fail(err);
        }
      });

      let inputBroken = false;
      const onInput = (data: Buffer, seq?: number) => {
        if (seq !== undefined && !sender)
          return sendJson({ type: 'error', message: 'numbered input needs the sender query parameter' });
        if (inputQueued + data.length > INPUT_QUEUE_MAX_BYTES) {
          // Faster than it can be stored: nothing after this is taken; the client sends again
          // what had no ack once it reconnects.
          inputBroken = true;
          return closeWith(1013, 'input arrives faster than it can be stored; reconnect and send again');
        }
        inputQueued += data.length;
        inputChain = inputChain
          .then(async () => {
            if (inputBroken) return;
            await d.tasks.input(
              caller,
              id,
              data,
              status,
              seq === undefined ? undefined : { sender: sender!, seq },
            );
            if (status === 'suspended') status = 'resuming'; // don't check the quota per keystroke
            if (seq !== undefined) sendJson({ type: 'ack', seq });
          })
          .finally(() => {
            inputQueued -= data.length;
          })
          .catch((err) => {
            fail(err);
            if (seq === undefined) return;
            // Refused for good (e.g. the task has ended): said, and nothing to send again.
            if (err instanceof TaskError) return sendJson({ type: 'ack', seq });
            // Unstored numbered input: take nothing after it on this socket; the client's
            // reconnect sends it again, in order.
            inputBroken = true;
            ws.close(1011, 'input could not be stored; reconnect and send it again');
          });
      };

      return {
        async onOpen(_evt, socket) {
          ws = socket;
          release = d.sockets.add(id, caller.userId);
          // A link's socket closes when the link expires, as its next request would be refused.
          if (caller.linkExpiresAt !== undefined) {
            const left = Math.max(0, caller.linkExpiresAt - Date.now());
            expiry = setTimeout(
              () => closeWith(4001, 'the link has expired; ask for a new one (/status)'),
              Math.min(left, 2 ** 31 - 1),
            );
          }
          follower = await OutputFollower.start(d.output, d.bus, id, {
            from,
            truncated: (first) =>
              sendJson({
                type: 'truncated',
                firstAvailableSeq: first,
                message: `output before seq ${first} was dropped (retention limit)`,
              }),
            ready: async (fromSeq) => {
              sendJson({ type: 'hello', taskId: id, fromSeq });
              await pushState();
            },
            deliver: sendChunks,
            taskChanged: () => void pushState(),
            onError: fail,
          }).catch((err) => {
            fail(err);
            return undefined;
          });
          if (closed) follower?.close();
        },
        onMessage(evt) {
          const data = evt.data;
          if (typeof data !== 'string') {
            const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
            if (buf.length > LIMITS.inputMaxBytes)
              return sendJson({ type: 'error', message: 'input frame too large' });
            return onInput(buf);
          }
          let parsed: z.infer<typeof clientMessage>;
          try {
            const r = clientMessage.safeParse(JSON.parse(data));
            if (!r.success) return sendJson({ type: 'error', message: describeZodError(r.error) });
            parsed = r.data;
          } catch {
            return sendJson({
              type: 'error',
              message: 'a text frame must be JSON: {"type":"input","data":"…"}',
            });
          }
          if (parsed.type === 'input') onInput(Buffer.from(parsed.data, 'utf8'), parsed.seq);
          else if (parsed.type === 'resize') {
            inputChain = inputChain.then(() => d.tasks.resize(id, parsed.cols, parsed.rows)).catch(fail);
          } else sendJson({ type: 'pong' });
        },
        onClose() {
          closed = true;
          clearTimeout(expiry);
          release();
          follower?.close();
        },
      };
    }),
  );
  return app;
}
