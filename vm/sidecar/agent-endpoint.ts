/**
 * The sidecar's door for the agent (vm/guest/agent-protocol.ts): a Unix socket only the agent's
 * user can open. Questions from the permission hook wait here, each on its hook's connection,
 * until the host's answer comes; they are sent to the host again on every attach, so a worker
 * restart or a suspend (the hook is frozen with the VM) loses none. Follow-up turns from the host
 * wait here, in order, until the conversation driver asks for the next one.
 *
 * The agent may be hostile too (prompt injection): its lines are bounded, its questions capped
 * and shrunk; nothing it sends reaches the host unchecked by the host's own schema.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  type AgentEvent,
  type AgentRequest,
  LineReader,
  line,
  shrinkToFit,
} from '../guest/agent-protocol.js';
import type { SidecarMessage } from '../protocol.js';

/** Questions waiting at once; more are denied at once (the host caps them too). */
const MAX_QUESTIONS = 16;
/** Turns waiting in the sidecar; the host keeps fewer waiting than this. */
const MAX_TURNS = 32;
/** A question's tool input as sent to the host (the host takes at most 256 KiB). */
const MAX_INPUT_BYTES = 200 * 1024;

interface Question {
  tool: string;
  toolUseId?: string;
  input: Record<string, unknown>;
  body: Buffer;
  conn: net.Socket;
}

export class AgentEndpoint {
  private readonly questions = new Map<string, Question>();
  private readonly turns: { n: number; text: string }[] = [];
  private lastTurn = 1;
  private readonly watchers = new Set<net.Socket>();
  private waitingForTurn: net.Socket | undefined;

  /** @param send sends a frame to the host if one is attached (else nothing). */
  constructor(
    readonly socketPath: string,
    private readonly send: (m: SidecarMessage, body?: Buffer) => void,
  ) {}

  /** Listens; the socket is the agent user's alone (mode 0600). */
  listen(owner?: { uid: number; gid: number }): void {
    const dir = path.dirname(this.socketPath);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer((conn) => this.serve(conn));
    server.listen(this.socketPath, () => {
      fs.chmodSync(this.socketPath, 0o600);
      if (owner) fs.chownSync(this.socketPath, owner.uid, owner.gid);
    });
  }

  /** A host attached: every question still waiting goes to it (it takes each id once). */
  onAttach(): void {
    for (const [id, q] of this.questions) this.send(this.questionFrame(id, q), q.body);
  }

  /** The host's answer: to the hook that waits for it, and shown by the driver. */
  answer(m: { id: string; decision: 'allow' | 'deny'; message: string; note: string }): void {
    const q = this.questions.get(m.id);
    this.send({ type: 'answer-ack', id: m.id });
    if (!q) return;
    this.questions.delete(m.id);
    this.tell(q.conn, { type: 'answer', decision: m.decision, message: m.message });
    q.conn.end();
    this.broadcast({ type: 'answered', id: m.id, decision: m.decision, note: m.note });
  }

  /** A follow-up turn (numbered by the host from 2, sent in order, again after a reconnect). */
  turn(n: number, text: string): void {
    if (n <= this.lastTurn) {
      this.send({ type: 'turn-ack', n });
      return;
    }
    // Unacknowledged, it stays in the host's queue and comes again when there is room.
    if (this.turns.length >= MAX_TURNS) return;
    this.lastTurn = n;
    this.turns.push({ n, text });
    this.send({ type: 'turn-ack', n });
    this.handOutTurn();
  }

  private handOutTurn(): void {
    const conn = this.waitingForTurn;
    if (!conn || conn.destroyed || !this.turns.length) return;
    this.waitingForTurn = undefined;
    const t = this.turns.shift()!;
    this.tell(conn, { type: 'turn', n: t.n, text: t.text });
  }

  private serve(conn: net.Socket): void {
    const reader = new LineReader();
    conn.on('data', (chunk: Buffer) => {
      let requests: unknown[];
      try {
        requests = reader.push(chunk);
      } catch {
        conn.destroy();
        return;
      }
      for (const r of requests) this.request(conn, r as AgentRequest);
    });
    conn.on('error', () => conn.destroy());
    conn.on('close', () => {
      this.watchers.delete(conn);
      if (this.waitingForTurn === conn) this.waitingForTurn = undefined;
      for (const [id, q] of this.questions) {
        if (q.conn !== conn) continue;
        // The hook gave up (its agent was interrupted): nobody waits for this answer any more.
        this.questions.delete(id);
        this.send({ type: 'question-gone', id });
        this.broadcast({
          type: 'answered',
          id,
          decision: 'deny',
          note: 'withdrawn: the agent stopped waiting',
        });
      }
    });
  }

  private request(conn: net.Socket, r: AgentRequest): void {
    if (!r || typeof r !== 'object') return;
    if (r.type === 'watch') {
      this.watchers.add(conn);
      for (const [id, q] of this.questions)
        this.tell(conn, { type: 'question', id, tool: q.tool, input: q.input });
    } else if (r.type === 'next') {
      this.waitingForTurn = conn;
      this.handOutTurn();
    } else if (r.type === 'ask') {
      const tool = typeof r.tool === 'string' ? r.tool.slice(0, 128) : '';
      const raw = r.input && typeof r.input === 'object' && !Array.isArray(r.input) ? r.input : {};
      if (!tool) return void this.refuse(conn, 'the question names no tool');
      if (this.questions.size >= MAX_QUESTIONS)
        return void this.refuse(conn, `${MAX_QUESTIONS} questions are already waiting for the owner`);
      const id = `q_${randomBytes(8).toString('hex')}`;
      const input = shrinkToFit(raw, MAX_INPUT_BYTES);
      const toolUseId = typeof r.toolUseId === 'string' ? r.toolUseId.slice(0, 128) : undefined;
      const q: Question = { tool, toolUseId, input, body: Buffer.from(JSON.stringify(input)), conn };
      this.questions.set(id, q);
      this.send(this.questionFrame(id, q), q.body);
      this.broadcast({ type: 'question', id, tool, input });
    }
  }

  private questionFrame(id: string, q: Question): SidecarMessage {
    return { type: 'question', id, tool: q.tool, ...(q.toolUseId ? { toolUseId: q.toolUseId } : {}) };
  }

  private refuse(conn: net.Socket, why: string): void {
    this.tell(conn, { type: 'answer', decision: 'deny', message: `Lia refused the question: ${why}.` });
    conn.end();
  }

  private tell(conn: net.Socket, e: AgentEvent): void {
    if (!conn.destroyed) conn.write(line(e));
  }

  private broadcast(e: AgentEvent): void {
    for (const w of this.watchers) this.tell(w, e);
  }
}
