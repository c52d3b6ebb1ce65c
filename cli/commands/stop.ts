/** `./lia stop <id>`: ends a task; its VM, disk and snapshot are removed, its output log stays. */
import { Command } from 'commander';
import { isEnded } from '../../common/task.js';
import { taskIdArg } from '../args.js';
import { clientOf } from '../context.js';
import { CliError } from '../errors.js';

const WAIT_MS = 60_000;

export function stopCommand(): Command {
  return new Command('stop')
    .description('end a task: its VM is cleaned up (its output stays readable with ./lia output)')
    .argument('<id>', 'the task id', taskIdArg)
    .option('--no-wait', 'return once Lia has taken the request, not once the task has ended')
    .action(async (id: string, o: { wait: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      await client.stop(id);
      if (!o.wait) {
        process.stdout.write(`${id}: stopping\n`);
        return;
      }
      // The workflow cleans up the VM before it marks the task ended: wait for that.
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const t = await client.task(id);
        if (isEnded(t.status)) {
          process.stdout.write(`${id}: ${t.status}\n`);
          return;
        }
        if (Date.now() > deadline)
          throw new CliError(
            `${id} is still ${t.status} ${WAIT_MS / 1000} s after the stop: its clean-up is slow or stuck; ` +
              `see ./lia status ${id}, and the Temporal UI for its workflow`,
          );
        await new Promise((r) => setTimeout(r, 200));
      }
    });
}
