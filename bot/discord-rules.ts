/**
 * What Discord allows and how it fails, in one place: its limits on what the bot sends, its
 * interaction deadlines, and which of its errors mean "try again later" and which mean "this
 * channel is gone for good" (so the bot stops asking instead of retrying forever).
 */
import { DiscordAPIError, HTTPError, RateLimitError } from 'discord.js';

export const DISCORD = {
  /** A message's content, in characters. */
  contentMax: 2000,
  /** A link button's URL. */
  buttonUrlMax: 512,
  /** A thread's name, and an autocomplete choice's name and value. */
  nameMax: 100,
  choicesMax: 25,
};

/**
 * Discord's clock for an interaction: its token (follow-ups and edits) dies 15 minutes after
 * it was created. Tests shorten it, as the Discord stand-in can.
 */
export interface DiscordTiming {
  tokenMs: number;
}
export const discordTiming = (): DiscordTiming => ({ tokenMs: 15 * 60_000 });

/**
 * When to stop waiting on a slow handler and answer another way: a minute before the token
 * dies (a quarter of its life when a test makes it short), leaving time for the edit itself.
 */
export function answerDeadline(createdAt: number, t: DiscordTiming): number {
  return createdAt + t.tokenMs - Math.min(60_000, t.tokenMs / 4);
}

/** At most `max` UTF-16 units, never splitting a surrogate pair (Discord counts characters). */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, max);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut;
}

/**
 * Channel errors that retrying cannot fix: the channel or thread is deleted (10003), the bot
 * may no longer see or post there (50001, 50013), or a moderator locked it (160005, or 50083
 * for an archived thread a post cannot reopen). 401/403 answers also count toward Discord's
 * ban on invalid requests, so the bot must not repeat them.
 */
const GONE_CODES = new Set([10003, 50001, 50013, 50083, 160005]);

export function channelGone(err: unknown): boolean {
  return err instanceof DiscordAPIError && typeof err.code === 'number' && GONE_CODES.has(err.code);
}

/** Discord had a problem, not the request: 5xx, a dropped connection, a timeout, a rate limit. */
export function transient(err: unknown): boolean {
  if (err instanceof HTTPError || err instanceof RateLimitError) return true;
  if (err instanceof DiscordAPIError) return err.status >= 500 || err.status === 429;
  const name = (err as { name?: string } | null)?.name;
  return (
    name === 'AbortError' || name === 'TimeoutError' || name === 'TypeError' || name === 'ConnectTimeoutError'
  );
}

/** A short reason for logs and for users: Discord's code and message, or the error's message. */
export function describeDiscordError(err: unknown): string {
  if (err instanceof DiscordAPIError) return `Discord said ${err.status} ${err.code}: ${err.message}`;
  if (err instanceof HTTPError) return `Discord answered ${err.status}`;
  return (err as Error)?.message ?? String(err);
}
