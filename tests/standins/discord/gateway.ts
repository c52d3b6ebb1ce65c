/**
 * The gateway half of the Discord stand-in: Discord's WebSocket protocol (v10, JSON encoding) —
 * HELLO, IDENTIFY (token checked), READY then GUILD_CREATE, heartbeats acknowledged, and
 * dispatches with increasing sequence numbers.
 */
import type http from 'node:http';
import {
  type APIGuild,
  type APIUser,
  GatewayDispatchEvents,
  GatewayOpcodes,
  type GatewayReceivePayload,
  type GatewaySendPayload,
} from 'discord-api-types/v10';
import { WebSocket, WebSocketServer } from 'ws';

export interface GatewayWorld {
  token: string;
  applicationId: string;
  botUser: APIUser;
  /** The guild as GUILD_CREATE carries it: channels, threads and members included. */
  guild(): Record<string, unknown> & Pick<APIGuild, 'id'>;
}

export class Gateway {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<{ ws: WebSocket; seq: number }>();
  readonly log: string[] = [];
  heartbeats = 0;

  constructor(
    server: http.Server,
    private readonly world: GatewayWorld,
  ) {
    this.wss = new WebSocketServer({ server, path: '/gateway' });
    this.wss.on('connection', (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    const session = { ws, seq: 0, identified: false };
    const send = (p: GatewayReceivePayload) => ws.send(JSON.stringify(p));
    send({ op: GatewayOpcodes.Hello, d: { heartbeat_interval: 41_250 }, s: null, t: null });
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw)) as GatewaySendPayload;
      this.log.push(`op ${msg.op}`);
      if (msg.op === GatewayOpcodes.Heartbeat) {
        this.heartbeats++;
        send({
          op: GatewayOpcodes.HeartbeatAck,
          d: null,
          s: null,
          t: null,
        } as unknown as GatewayReceivePayload);
      } else if (msg.op === GatewayOpcodes.Identify) {
        if (msg.d.token !== this.world.token && msg.d.token !== `Bot ${this.world.token}`) {
          ws.close(4004, 'Authentication failed.');
          return;
        }
        session.identified = true;
        this.sessions.add(session);
        const guild = this.world.guild();
        this.dispatch(session, GatewayDispatchEvents.Ready, {
          v: 10,
          user: this.world.botUser,
          guilds: [{ id: guild.id, unavailable: true }],
          session_id: `session-${Date.now()}`,
          resume_gateway_url: 'ws://unused.invalid',
          shard: [0, 1],
          application: { id: this.world.applicationId, flags: 0 },
        });
        this.dispatch(session, GatewayDispatchEvents.GuildCreate, guild);
      }
    });
    ws.on('close', () => this.sessions.delete(session));
  }

  private dispatch(session: { ws: WebSocket; seq: number }, t: string, d: unknown): void {
    if (session.ws.readyState !== WebSocket.OPEN) return;
    session.ws.send(JSON.stringify({ op: GatewayOpcodes.Dispatch, t, s: ++session.seq, d }));
  }

  /** Sends an event to every identified session; false when no bot is connected. */
  broadcast(t: string, d: unknown): boolean {
    let sent = false;
    for (const s of this.sessions) {
      this.dispatch(s, t, d);
      sent = true;
    }
    return sent;
  }

  get connected(): number {
    return this.sessions.size;
  }

  close(): void {
    for (const s of this.sessions) s.ws.terminate();
    this.wss.close();
  }
}
