/** `./lia status <id>`: one task's state, where it runs, what it cost, and its web link. */
import { Command } from 'commander';
import type { TaskView } from '../../api/types.js';
import { usageText } from '../../common/usage-text.js';
import { taskIdArg } from '../args.js';
import { clientOf } from '../context.js';
import { duration, localTime, printJson } from '../format.js';

export function statusCommand(): Command {
  return new Command('status')
    .description("a task's state, host, driver, tokens and cost, error or exit code, and web link")
    .argument('<id>', 'the task id', taskIdArg)
    .option('--json', "print the API's answer as JSON")
    .option('--link', "a new web link to the task's page (it replaces the task's earlier links)")
    .action(async (id: string, o: { json?: boolean; link?: boolean }, cmd: Command) => {
      const t = await clientOf(cmd).task(id, o.link);
      if (o.json) return printJson(t);
      process.stdout.write(describe(t));
    });
}

function describe(t: TaskView & { url?: string }): string {
  const u = t.usage;
  const lines: [string, string | null | undefined][] = [
    [
      'status',
      `${t.status}${t.idleDeadline ? ` (suspends after ${duration(t.idleDeadline - Date.now())} more idle)` : ''}`,
    ],
    ['runtime', t.runtime],
    ['owner', t.owner],
    ['prompt', t.promptFirstLine],
    ['host', t.hostId && `${t.hostId}, driver ${t.driver ?? '?'} (${t.acceleration ?? '?'})`],
    ['created', localTime(t.createdAt)],
    ['updated', localTime(t.updatedAt)],
    ['tokens', usageText(u)],
    ['budget', t.budgetNotice],
    ['exit code', t.exitCode === null ? null : String(t.exitCode)],
    ['error', t.error],
    ['summary', t.summary?.result.split('\n', 1)[0]],
    [
      'repository',
      t.repo &&
        `${t.repo.owner}/${t.repo.name} on ${t.repo.branch}${t.repo.base ? ` (from ${t.repo.base})` : ''}`,
    ],
    ['pull request', t.pullRequest?.url],
    ['web link', t.url],
  ];
  const shown = lines.filter((l): l is [string, string] => !!l[1]);
  return `${t.id}\n${shown.map(([k, v]) => `  ${`${k}:`.padEnd(11)}${v}`).join('\n')}\n`;
}
