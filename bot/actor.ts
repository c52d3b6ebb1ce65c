/**
 * Who is acting, from a Discord interaction or message: the Discord user id is the Lia user id;
 * admins are the configured users (LIA__API__ADMIN_USERS) and members of the admin roles.
 */
import type { GuildMember, Interaction, Message, PartialGuildMember } from 'discord.js';
import type { Config } from '../common/config.js';
import type { Actor } from '../tasks/service.js';

type Member = GuildMember | PartialGuildMember | { roles: string[] } | null | undefined;

export function memberRoles(member: Member | unknown): string[] {
  if (!member || typeof member !== 'object' || !('roles' in member)) return [];
  const roles = (member as { roles: unknown }).roles;
  if (Array.isArray(roles)) return roles as string[];
  const cache = (roles as { cache?: Map<string, unknown> }).cache;
  return cache ? [...cache.keys()] : [];
}

export function actorOf(config: Config, userId: string, roles: string[]): Actor {
  const admin =
    config.api.admin_users.includes(userId) || roles.some((r) => config.discord.admin_roles.includes(r));
  return { userId, admin };
}

export function interactionActor(config: Config, i: Interaction): Actor {
  return actorOf(config, i.user.id, memberRoles(i.member));
}

export function messageActor(config: Config, m: Message): Actor {
  return actorOf(config, m.author.id, memberRoles(m.member));
}

/**
 * Why this user may not spawn here, or undefined when they may. Spawning starts VMs on the
 * operator's hosts and spends their model budget, so it is closed until the operator says
 * where (guild list), by whom (role list), or opens it to all (LIA__DISCORD__SPAWN_OPEN).
 */
export function spawnRefusal(config: Config, guildId: string | null, roles: string[]): string | undefined {
  const { spawn_guilds: guilds, spawn_roles: allowed, spawn_open: open } = config.discord;
  if (!guildId) return "Lia's commands work in a server only.";
  if (!open && !guilds.length && !allowed.length)
    return "Spawning agents is not enabled yet: Lia's operator has not said where or for whom (LIA__DISCORD__SPAWN_GUILDS, LIA__DISCORD__SPAWN_ROLES or LIA__DISCORD__SPAWN_OPEN).";
  if (guilds.length && !guilds.includes(guildId)) return 'Spawning agents is not enabled in this server.';
  if (allowed.length && !roles.some((r) => allowed.includes(r)))
    return 'You need one of the roles allowed to spawn agents.';
  return undefined;
}
