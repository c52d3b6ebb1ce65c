/**
 * Who is asking. Two kinds of caller:
 * - the bot (or another trusted service): `Authorization: Bearer <service token>` and
 *   `X-Lia-User: <user id>` naming the user it acts for;
 * - a browser: the signed link token the bot gave its owner, as `Authorization: Bearer <token>`
 *   or `?token=` (WebSockets cannot set headers). A link acts for its user on its one task and
 *   may list that user's tasks.
 */
import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Config } from '../common/config.js';
import { USER_ID_RE, USER_ID_RULE } from '../common/user-id.js';
import type { LinkSigner } from '../tasks/links.js';
import type { Actor } from '../tasks/service.js';
import { HttpError, sendError } from './errors.js';

export interface Caller extends Actor {
  /** Set for link tokens: the only task this caller may act on. */
  linkTaskId?: string;
  /** Link tokens: when it was issued (revoked by a newer link) and when it expires (epoch ms). */
  linkIssuedAt?: number;
  linkExpiresAt?: number;
  via: 'service' | 'link';
}

/** `taskId` is set by the per-task door (task-scope.ts), already checked. */
export type AuthEnv = { Variables: { caller: Caller; taskId: string } };

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function authenticate(config: Config, links: LinkSigner): MiddlewareHandler<AuthEnv> {
  const admins = new Set(config.api.admin_users);
  return async (c, next) => {
    const header = c.req.header('authorization');
    const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
    const token = bearer ?? c.req.query('token');
    if (!token) {
      return sendError(
        c,
        new HttpError(
          401,
          'unauthenticated',
          'no credentials: send "Authorization: Bearer <token>" (or ?token= on a WebSocket)',
        ),
      );
    }
    const service = config.api.service_token;
    if (service && sameSecret(token, service)) {
      const user = c.req.header('x-lia-user');
      if (!user || !USER_ID_RE.test(user)) {
        return sendError(
          c,
          new HttpError(400, 'invalid', `a service call must name its user in X-Lia-User (${USER_ID_RULE})`),
        );
      }
      const adminHeader = c.req.header('x-lia-admin') === 'true';
      c.set('caller', { userId: user, admin: admins.has(user) || adminHeader, via: 'service' });
      return next();
    }
    const claims = await links.verify(token);
    if ('error' in claims) return sendError(c, new HttpError(401, 'unauthenticated', claims.error));
    c.set('caller', {
      userId: claims.userId,
      admin: admins.has(claims.userId),
      linkTaskId: claims.taskId,
      linkIssuedAt: claims.issuedAt,
      linkExpiresAt: claims.expiresAt,
      via: 'link',
    });
    return next();
  };
}

/** A link token opens one task; any other task id is refused with a reason. */
export function checkLinkScope(caller: Caller, taskId: string): void {
  if (caller.via === 'link' && caller.linkTaskId !== taskId) {
    throw new HttpError(
      403,
      'forbidden',
      `this link is for task ${caller.linkTaskId}, not ${taskId}; open that task's own link`,
    );
  }
}
