/** `./lia list`: your tasks, newest first as the API gives them. */
import { Command } from 'commander';
import { clientOf } from '../context.js';
import { localTime, printJson, table } from '../format.js';

export function listCommand(): Command {
  return new Command('list')
    .description("your tasks: id, state, runtime, when created, the prompt's first line")
    .option('--all', "every user's tasks (an operator's view: the service token may act as an admin)")
    .option('--json', "print the API's answer as JSON")
    .action(async (o: { all?: boolean; json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      const { tasks } = await client.list(o.all);
      if (o.json) return printJson(tasks);
      if (!tasks.length) {
        process.stdout.write(
          `No tasks for user "${client.conn.user}". Start one: ./lia spawn --runtime shell "hello"\n`,
        );
        return;
      }
      const header = ['ID', 'STATUS', 'RUNTIME', ...(o.all ? ['OWNER'] : []), 'CREATED', 'PROMPT'];
      const rows = tasks.map((t) => [
        t.id,
        t.status,
        t.runtime,
        ...(o.all ? [t.owner] : []),
        localTime(t.createdAt),
        t.promptFirstLine,
      ]);
      process.stdout.write(`${table(header, rows)}\n`);
    });
}
