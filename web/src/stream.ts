/**
 * The task's terminal stream: output chunks numbered by seq, each shown exactly once. When the
 * socket drops, it reconnects with backoff from the last seq it has, so nothing is missed or
 * doubled. Input typed meanwhile is kept and sent once connected.
 */
import { token } from './api';

export interface StreamEvents {
  output(bytes: Uint8Array): void;
  state(s: { status: string; idleDeadline: number | null; error: string | null }): void;
  connection(up: boolean): void;
  error(message: string): void;
}

export class TaskStream {
  private ws?: WebSocket;
  private lastSeq = 0;
  private closed = false;
  private retry = 250;
  private queue: string[] = [];

  constructor(
    private readonly taskId: string,
    private readonly on: StreamEvents,
  ) {
    this.connect();
  }

  private connect(): void {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${proto}://${location.host}/api/v1/tasks/${this.taskId}/stream?from=${this.lastSeq + 1}&token=${encodeURIComponent(token() ?? '')}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 250;
      this.on.connection(true);
      for (const m of this.queue.splice(0)) ws.send(m);
    };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        const m = JSON.parse(e.data);
        if (m.type === 'state') this.on.state(m);
        else if (m.type === 'error') this.on.error(m.message);
        return;
      }
      const view = new DataView(e.data as ArrayBuffer);
      const seq = Number(view.getBigUint64(0));
      if (seq <= this.lastSeq) return; // already shown
      this.lastSeq = seq;
      this.on.output(new Uint8Array(e.data as ArrayBuffer, 8));
    };
    ws.onclose = () => {
      if (this.closed) return;
      this.on.connection(false);
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
  }

  private send(m: object): void {
    const s = JSON.stringify(m);
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(s);
    else this.queue.push(s);
  }

  input(data: string): void {
    this.send({ type: 'input', data });
  }

  resize(cols: number, rows: number): void {
    this.send({ type: 'resize', cols, rows });
  }

  close(): void {
    this.closed = true;
    this.ws?.close();
  }
}
