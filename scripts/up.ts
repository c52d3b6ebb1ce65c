/**
 * `./lia start`: everything on one machine — Temporal and PostgreSQL (private ones when none is
 * configured), then each role in a process of its own, supervised: the control worker, a host
 * worker, the API and web UI, and the bot when a Discord token is set. One role crashing is
 * started again without touching the others. Ctrl-C stops all of it. Task VMs outlive it on
 * purpose, like they outlive a worker restart: the next start picks them up again.
 */
import { loadConfigOrExit } from '../common/config.js';
import { bringUpStack } from './stack.js';
import { type RoleReady, Supervisor } from './supervisor.js';

const config = loadConfigOrExit();
const stack = await bringUpStack(config);
// A role this machine cannot run (no VM driver passes its self-check): Lia does not start.
const supervisor = new Supervisor(() => void shutdown('a role cannot run here', 3));

let stopping = false;
async function shutdown(why: string, code = 0) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${why}: stopping…\n`);
  await supervisor.stop();
  await stack.stop();
  process.stderr.write('stopped.\n');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

// What every role needs, set up above; each role's metrics on a port of its own.
const roles = ['control', 'host', 'api', ...(config.discord.token ? ['bot'] : [])];
const base = config.metrics.port;
const ready = await Promise.all(
  roles.map((role, i) =>
    supervisor.start(role, {
      ...process.env,
      LIA__DATABASE__URL: stack.databaseUrl,
      LIA__TEMPORAL__ADDRESS: stack.temporalAddress,
      LIA__API__SERVICE_TOKEN: stack.serviceToken,
      LIA__API__LINK_SECRET: stack.linkSecret,
      LIA__METRICS__PORT: base ? String(base + i) : '0',
    }),
  ),
);
const of = (role: string): RoleReady['info'] => ready.find((r) => r.role === role)?.info ?? {};
const host = of('host');
const botWarnings = (of('bot').warnings as string[] | undefined) ?? [];
const metrics = ready
  .filter((r) => r.info.metricsPort)
  .map((r) => `${r.role} :${r.info.metricsPort}`)
  .join(', ');
const lines = [
  '',
  'Lia is up.',
  `  API and web UI:  ${of('api').publicUrl}   (REST under /api/v1)`,
  `  Temporal:        ${stack.temporalAddress}${stack.temporalUiUrl ? `   UI: ${stack.temporalUiUrl}` : ''}`,
  `  PostgreSQL:      ${stack.databaseUrl.replace(/\/\/[^@/]*@/, '//')}`,
  `  VM driver:       ${host.driver} (${host.acceleration}), host ${host.hostId}`,
  `  Service token:   ${stack.serviceTokenFile ? `in ${stack.serviceTokenFile}` : 'LIA__API__SERVICE_TOKEN'}`,
  `  Discord bot:     ${config.discord.token ? 'connected' : 'off (set LIA__DISCORD__TOKEN)'}`,
  ...botWarnings.map((w) => `    warning: ${w}`),
  `  Processes:       ${roles.map((r) => `${r} (pid ${supervisor.pid(r)})`).join(', ')}`,
  ...(metrics ? [`  Metrics:         /metrics on ${metrics}`] : []),
  'Press Ctrl-C to stop.',
  // The first thing to do with it, with or without Discord (README's quick start; docs/cli.md).
  'Try it, in another terminal:  ./lia spawn --runtime shell "hello"   then   ./lia attach <id>',
  '',
];
process.stderr.write(lines.join('\n'));
