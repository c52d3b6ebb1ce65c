/**
 * Strict host[:port] parsing, for what a guest asks the egress proxy for (a CONNECT target, the
 * authority of an absolute URL) and for the operator's egress allowlist. Anything that is not
 * plainly a DNS name or an IPv4 address with a port from 1 to 65535 is refused: no IPv6
 * literals, no user info, no percent-encoding, no empty or numeric-looking labels.
 */

export interface HostPort {
  /** Lower case, without a trailing dot. */
  host: string;
  port: number;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A DNS name (letters, digits, dashes, dots) or a dotted IPv4 address; undefined otherwise. */
export function parseHost(text: string): string | undefined {
  let h = text.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!h || h.length > 253) return undefined;
  if (IPV4.test(h)) return h;
  const labels = h.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  // An all-digit last label is an IPv4 address written oddly (e.g. 0x7f.1, 2130706433): refused.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return undefined;
  return h;
}

/** A port: decimal digits only, 1 to 65535. */
export function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** `host:port` (or `host` when a default port is given); undefined when anything is off. */
export function parseHostPort(text: string, defaultPort?: number): HostPort | undefined {
  if (text.length > 260) return undefined;
  const colon = text.lastIndexOf(':');
  const hostText = colon >= 0 ? text.slice(0, colon) : text;
  const portText = colon >= 0 ? text.slice(colon + 1) : undefined;
  const host = parseHost(hostText);
  if (!host) return undefined;
  if (portText === undefined) return defaultPort === undefined ? undefined : { host, port: defaultPort };
  const port = parsePort(portText);
  return port === undefined ? undefined : { host, port };
}
