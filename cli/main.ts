/**
 * `./lia spawn | list | status | attach | output | resume | stop | pr`: Lia from the command line,
 * over its REST API and WebSocket stream only (docs/cli.md), as one user with the service token.
 */
import { Command, CommanderError } from 'commander';
import { attachCommand } from './commands/attach.js';
import { diffCommand } from './commands/diff.js';
import { listCommand } from './commands/list.js';
import { outputCommand } from './commands/output.js';
import { prCommand } from './commands/pr.js';
import { resumeCommand } from './commands/resume.js';
import { spawnCommand } from './commands/spawn.js';
import { statusCommand } from './commands/status.js';
import { stopCommand } from './commands/stop.js';
import { CliError } from './errors.js';

const program = new Command('./lia')
  .description(
    "Lia's tasks from the command line. With no options it talks to the Lia that ./lia start runs " +
      'from this folder, as you.',
  )
  .option(
    '--url <url>',
    "Lia's address (env LIA_URL; default: LIA__SERVER__PUBLIC_URL, else http://LIA__SERVER__HOST:LIA__SERVER__PORT)",
  )
  .option(
    '--token <token>',
    "the API's service token (env LIA_TOKEN, which other users cannot see in ps; default: " +
      'LIA__API__SERVICE_TOKEN, else <LIA__STATE__DIR>/secrets/service-token)',
  )
  .option('--user <id>', 'the user to act as (env LIA_USER; default: your login name)')
  .addHelpText(
    'after',
    '\nStart with:\n  ./lia spawn --runtime shell "hello"     then     ./lia attach <id>   (Ctrl-] detaches)\n\n' +
      'More: docs/cli.md',
  )
  .showHelpAfterError('(add --help for the options)')
  .configureHelp({ showGlobalOptions: true })
  .exitOverride();

for (const c of [
  spawnCommand,
  listCommand,
  statusCommand,
  attachCommand,
  outputCommand,
  resumeCommand,
  stopCommand,
  prCommand,
  diffCommand,
])
  program.addCommand(c().copyInheritedSettings(program));

// `./lia output … | head`: the reader going away is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; its message has already been printed.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CliError) {
    process.stderr.write(`lia: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else throw err;
}
// Nothing the CLI started must keep it alive once its command is done (a paused stdin can).
process.exit();
