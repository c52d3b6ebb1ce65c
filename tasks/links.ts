/**
 * Signed, expiring browser links. A token names its user and the one task it was made for, and
 * acts on that task only: it lists nothing else and never gets a new link. A newer link for the
 * task (or its stop) revokes it (tasks.links_not_before, checked by the API's per-task door).
 */
import { errors, jwtVerify, SignJWT } from 'jose';

export interface LinkClaims {
  userId: string;
  taskId: string;
  expiresAt: number;
  /** Epoch ms the link was issued: a link issued before the task's last new link is revoked. */
  issuedAt: number;
}

export class LinkSigner {
  private readonly key: Uint8Array;
  constructor(
    secret: string,
    private readonly ttlMinutes: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async sign(
    userId: string,
    taskId: string,
    o: { expiresAt?: number; issuedAt?: number } = {},
  ): Promise<string> {
    const exp = Math.floor((o.expiresAt ?? Date.now() + this.ttlMinutes * 60_000) / 1000);
    return new SignJWT({ tid: taskId, lit: o.issuedAt ?? Date.now() })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(exp)
      .setAudience('lia-web')
      .sign(this.key);
  }

  /** Returns the claims, or a reason the token is not acceptable. */
  async verify(token: string): Promise<LinkClaims | { error: string }> {
    try {
      const { payload } = await jwtVerify(token, this.key, { audience: 'lia-web', algorithms: ['HS256'] });
      if (
        typeof payload.sub !== 'string' ||
        typeof payload.tid !== 'string' ||
        typeof payload.exp !== 'number'
      ) {
        return { error: 'the link token is malformed' };
      }
      const issuedAt = typeof payload.lit === 'number' ? payload.lit : (payload.iat ?? 0) * 1000;
      return { userId: payload.sub, taskId: payload.tid, expiresAt: payload.exp * 1000, issuedAt };
    } catch (err) {
      if (err instanceof errors.JWTExpired)
        return { error: 'the link has expired; ask the bot for a new one (/status)' };
      return { error: 'the link token is not valid (forged or damaged)' };
    }
  }
}

export function taskUrl(baseUrl: string, taskId: string, token: string): string {
  return `${baseUrl.replace(/\/$/, '')}/tasks/${taskId}#token=${encodeURIComponent(token)}`;
}
