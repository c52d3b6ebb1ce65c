/** `./lia spawn "prompt"`: a new task, its id and its links; `--attach` goes straight into its terminal. */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { LIMITS, RUNTIMES } from '../../common/task.js';
import { collect, wholeNumber } from '../args.js';
import type { NewTask } from '../client.js';
import { callerPath, clientOf } from '../context.js';
import { CliError } from '../errors.js';
import { printJson } from '../format.js';
import { attach } from './attach.js';

interface SpawnOptions {
  runtime: string;
  file: string[];
  idleTimeout?: number;
  attach?: boolean;
  quiet?: boolean;
  json?: boolean;
  repo?: string;
  branch?: string;
  autoPr?: boolean;
}

export function spawnCommand(): Command {
  return new Command('spawn')
    .description('start a task: an agent in a VM of its own, given the prompt')
    .argument(
      '<prompt>',
      'what the agent should do (saved as PROMPT.md in its folder); "-" reads it from standard input',
    )
    .addOption(
      new Option(
        '--runtime <runtime>',
        'claude: Claude Code; claude-headless: one claude -p run; shell: bash',
      )
        .choices(RUNTIMES)
        .default('claude'),
    )
    .option(
      '--file <path>',
      `a file to put in the task's folder (repeat for more: at most ${LIMITS.filesMax}, ${LIMITS.fileMaxBytes / 1024 / 1024} MiB each)`,
      collect,
      [],
    )
    .option(
      '--idle-timeout <seconds>',
      "idle time before the task is suspended (default: Lia's LIA__VM__IDLE_TIMEOUT_MINUTES)",
      wholeNumber(LIMITS.idleTimeoutSeconds.min, LIMITS.idleTimeoutSeconds.max),
    )
    .option(
      '--repo <repo>',
      'a repository to check out on the branch lia/<task id> (owner/name or URL; LIA__FORGE__ALLOW_REPOS lists those allowed)',
    )
    .option('--branch <branch>', 'with --repo: the base branch (default: the repository default branch)')
    .option(
      '--no-auto-pr',
      'with --repo and claude-headless: open the pull request only when asked (./lia pr), not after every turn',
    )
    .option('--attach', "attach to the task's terminal once it is created")
    .option('-q, --quiet', 'print only the task id')
    .option('--json', "print the API's answer as JSON")
    .action(async (prompt: string, o: SpawnOptions, cmd: Command) => {
      const client = clientOf(cmd);
      const task: NewTask = {
        prompt: prompt === '-' ? fs.readFileSync(0, 'utf8') : prompt,
        runtime: o.runtime,
        idleTimeoutSeconds: o.idleTimeout,
        files: o.file.map(readTaskFile),
        ...(o.repo || o.branch ? { repo: o.repo, branch: o.branch } : {}),
        ...(o.autoPr === false ? { autoPullRequest: false } : {}),
      };
      const created = await client.create(task);
      const id = created.taskId;
      if (o.json) printJson(created);
      else if (o.quiet) process.stdout.write(`${id}\n`);
      else
        process.stdout.write(
          [
            `Task ${id} created (runtime ${o.runtime}).`,
            `  Watch and type in it:  ./lia attach ${id}`,
            `  In a browser:          ${created.url}`,
            `  Stop it:               ./lia stop ${id}`,
            '',
          ].join('\n'),
        );
      if (o.attach) process.exitCode = await attach(client, id);
    });
}

function readTaskFile(given: string): { name: string; content: string } {
  const file = callerPath(given);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new CliError(
      `--file ${given}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  if (!stat.isFile()) throw new CliError(`--file ${given}: not a file (a folder? give its files one by one)`);
  // Checked here so a huge file is not read and encoded only to be refused.
  if (stat.size > LIMITS.fileMaxBytes)
    throw new CliError(
      `--file ${given}: ${stat.size} bytes, more than the ${LIMITS.fileMaxBytes / 1024 / 1024} MiB a task file may have`,
    );
  return { name: path.basename(file), content: fs.readFileSync(file).toString('base64') };
}
