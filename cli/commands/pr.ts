/** `./lia pr <id>`: pushes a task's branch and opens (or updates) its pull request (issue 20). */
import { Command } from 'commander';
import { diffStatText } from '../../common/diff.js';
import { taskIdArg } from '../args.js';
import { clientOf } from '../context.js';
import { printJson } from '../format.js';

export function prCommand(): Command {
  return new Command('pr')
    .description(
      "commit what the agent left, push the task's branch (lia/<id>) and open or update its pull request",
    )
    .argument('<id>', 'the task id (spawned with --repo)', taskIdArg)
    .option('--json', "print the API's answer as JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      process.stderr.write(`pushing ${id}'s branch and opening its pull request…\n`);
      const pr = await clientOf(cmd).pullRequest(id);
      if (o.json) return printJson(pr);
      const stat = pr.stat ? ` (${diffStatText(pr.stat)})` : '';
      process.stdout.write(
        `${pr.created ? 'opened' : 'updated'} pull request #${pr.number}: ${pr.url}${stat}\n`,
      );
    });
}
