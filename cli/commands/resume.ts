/** `./lia resume <id>`: brings a suspended task back, answering once it runs. */
import { Command } from 'commander';
import { taskIdArg } from '../args.js';
import { clientOf } from '../context.js';

export function resumeCommand(): Command {
  return new Command('resume')
    .description('resume a suspended task (typing into it with ./lia attach does too)')
    .argument('<id>', 'the task id', taskIdArg)
    .action(async (id: string, _o, cmd: Command) => {
      process.stderr.write(`resuming ${id}…\n`);
      const state = await clientOf(cmd).resume(id);
      process.stdout.write(`${id}: ${state.status}\n`);
    });
}
