/** `./lia diff <id>`: what the agent changed — the task's working tree against its base (issue 20). */
import { Command } from 'commander';
import { diffStatText } from '../../common/diff.js';
import { taskIdArg } from '../args.js';
import { clientOf } from '../context.js';
import { localTime, printJson } from '../format.js';

const COLOURS: [RegExp, string][] = [
  [/^(diff --git|index |--- |\+\+\+ |new file|deleted file|similarity|rename |old mode|new mode)/, '\x1b[1m'],
  [/^@@/, '\x1b[36m'],
  [/^\+/, '\x1b[32m'],
  [/^-/, '\x1b[31m'],
];

/** The guest's text, with its control characters made visible: it is shown on the user's terminal. */
const visible = (line: string) =>
  line.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the guest's control characters are what we show
    /[\x00-\x08\x0b-\x1f\x7f\x9b]/g,
    (c) => `^${String.fromCharCode((c.charCodeAt(0) + 64) & 0x7f)}`,
  );

export function diffCommand(): Command {
  return new Command('diff')
    .description("the task's working tree against the base it started from (uncommitted files too)")
    .argument('<id>', 'the task id (spawned with --repo)', taskIdArg)
    .option('--stat', 'only the files changed and their line counts')
    .option('--last', 'the last diff taken, without asking the guest for a fresh one')
    .option('--json', "print the API's answer as JSON")
    .action(async (id: string, o: { stat?: boolean; last?: boolean; json?: boolean }, cmd: Command) => {
      const d = await clientOf(cmd).diff(id, !o.last);
      if (o.json) return printJson(d);
      const colour = process.stdout.isTTY && !process.env.NO_COLOR;
      const out: string[] = [];
      if (!d.fresh) out.push(`(${d.note ?? 'not fresh'}; taken ${localTime(d.takenAt)})`);
      for (const f of d.files) {
        const counts = f.added === null ? 'binary' : `+${f.added} -${f.deleted}`;
        out.push(`${counts.padStart(12)}  ${visible(f.from ? `${f.from} => ${f.path}` : f.path)}`);
      }
      if (d.moreFiles) out.push(`   … and ${d.moreFiles} more files`);
      out.push(diffStatText(d.stat));
      if (!o.stat && d.patch) {
        out.push('');
        for (const line of d.patch.replace(/\n$/, '').split('\n')) {
          const c = colour ? COLOURS.find(([re]) => re.test(line))?.[1] : undefined;
          out.push(c ? `${c}${visible(line)}\x1b[0m` : visible(line));
        }
        if (d.truncated) out.push('(the diff is cut here: it is larger than Lia shows)');
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
