/**
 * The agent's environment in a VM: its only way out is the sidecar's proxy (sidecar.ts's
 * `--proxy-listen`), which carries every connection over the egress port to the host's proxy.
 */

/** Where the agent's clients find the way out: the sidecar, inside the guest. */
export const GUEST_PROXY = 'http://127.0.0.1:3128';

export const GUEST_ENV: Readonly<Record<string, string>> = {
  HTTP_PROXY: GUEST_PROXY,
  HTTPS_PROXY: GUEST_PROXY,
  http_proxy: GUEST_PROXY,
  https_proxy: GUEST_PROXY,
  // The model API is the proxy itself (path-only requests), not something to go through it.
  NO_PROXY: 'localhost,127.0.0.1',
  no_proxy: 'localhost,127.0.0.1',
  ANTHROPIC_BASE_URL: GUEST_PROXY,
  HOME: '/home/agent',
};
