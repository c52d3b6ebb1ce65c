/**
 * Signed, expiring browser links. A token names its user and the task it was made for; it lets
 * the browser act on that task and list that user's tasks (with fresh per-task links).
 */
import { errors, jwtVerify, SignJWT } from 'jose';

export interface LinkClaims {
  userId: string;
  taskId: string;
  expiresAt: number;
}

export class LinkSigner {
  private readonly key: Uint8Array;
  constructor(
    secret: string,
    private readonly ttlMinutes: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async sign(userId: string, taskId: string, expiresAt?: number): Promise<string> {
    const exp = Math.floor((expiresAt ?? Date.now() + this.ttlMinutes * 60_000) / 1000);
    return new SignJWT({ tid: taskId })
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
      return { userId: payload.sub, taskId: payload.tid, expiresAt: payload.exp * 1000 };
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
