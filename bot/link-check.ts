/**
 * Whether the terminal links the bot hands out will work for the people who get them. The
 * links go into Discord link buttons, which take http(s) URLs of at most 512 characters (else
 * Discord refuses the whole answer), and they are opened in the user's browser, on the user's
 * machine: a loopback or private address reaches the user's own machine or nothing.
 */
import net from 'node:net';
import { DISCORD } from './discord-rules.js';

export interface LinkCheck {
  /** Links Discord would refuse: the bot does not start. */
  fatal?: string;
  /** Links that work for some users only: said at start. */
  warnings: string[];
}

const FIX = 'set LIA__SERVER__PUBLIC_URL to the address users open the web UI at';

/** `sample` is a real link as the bot would make it (longest user id, a task id, a signed token). */
export function checkLinks(sample: string, publicUrlSet: boolean): LinkCheck {
  let url: URL;
  try {
    url = new URL(sample);
  } catch {
    return { fatal: `terminal links would not be URLs (${sample.slice(0, 80)}): ${FIX}`, warnings: [] };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return {
      fatal: `Discord link buttons take http and https links only, not ${url.protocol}: ${FIX}`,
      warnings: [],
    };
  if (sample.length > DISCORD.buttonUrlMax)
    return {
      fatal: `terminal links would be ${sample.length} characters; Discord link buttons take at most ${DISCORD.buttonUrlMax}: shorten LIA__SERVER__PUBLIC_URL`,
      warnings: [],
    };
  const warnings: string[] = [];
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const origin = url.origin;
  const unset = publicUrlSet ? '' : ' (LIA__SERVER__PUBLIC_URL is not set)';
  if (isLoopback(host))
    warnings.push(
      `terminal links point at ${origin}${unset}, which is the user's own machine: they work only for someone on this one; ${FIX}`,
    );
  else if (isPrivate(host))
    warnings.push(`terminal links point at ${origin}${unset}, reachable only inside this network; ${FIX}`);
  else if (url.protocol === 'http:')
    warnings.push(
      `terminal links use plain http (${origin}): their signed tokens can be read on the way; use https`,
    );
  return { warnings };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (net.isIPv4(host)) return host.startsWith('127.') || host === '0.0.0.0';
  if (net.isIPv6(host)) return host === '::1' || host === '::' || host.startsWith('::ffff:127.');
  return false;
}

function isPrivate(host: string): boolean {
  if (net.isIPv4(host)) {
    const [a, b] = host.split('.').map(Number) as [number, number];
    return (
      a === 10 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254) ||
      (a === 100 && b >= 64 && b <= 127)
    );
  }
  if (net.isIPv6(host)) return /^f[cd]/.test(host) || host.startsWith('fe80:');
  // A name without a dot, or under a local-only suffix, resolves on this network only.
  return !host.includes('.') || /\.(local|lan|internal|home\.arpa|intranet|corp)$/.test(host);
}
