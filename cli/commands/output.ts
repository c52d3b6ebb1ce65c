/**
 * `./lia output <id>`: the task's stored output, byte for byte, as its terminal received it;
 * `--follow` then stays on its stream, with no gap or repeat, until the task ends.
 */
import { Command } from 'commander';
import { isEnded } from '../../common/task.js';
import { taskIdArg, wholeNumber } from '../args.js';
import { clientOf } from '../context.js';
import { TaskStream } from '../stream.js';

const END_GRACE_MS = 300;

export function outputCommand(): Command {
  return new Command('output')
    .description("the task's stored output (its terminal's bytes, escape codes and all)")
    .argument('<id>', 'the task id', taskIdArg)
    .option('-f, --follow', 'keep printing new output until the task ends (Ctrl-C stops)')
    .option(
      '--from <seq>',
      'start at this output chunk (seq), not the first',
      wholeNumber(1, Number.MAX_SAFE_INTEGER),
      1,
    )
    .action(async (id: string, o: { follow?: boolean; from: number }, cmd: Command) => {
      const client = clientOf(cmd);
      let page = await client.output(id, o.from);
      if (page.truncated)
        process.stderr.write(
          `[lia] output before seq ${page.firstAvailableSeq} was dropped (LIA__OUTPUT__RETENTION_BYTES)\n`,
        );
      await write(page.bytes);
      // The API answers a page at a time (8 MiB raw): go on from where each ends.
      while (page.more) {
        page = await client.output(id, page.nextSeq);
        await write(page.bytes);
      }
      if (!o.follow) return;
      process.exitCode = await new Promise<number>((resolve, reject) => {
        let ending = false;
        const stream = new TaskStream(
          client,
          id,
          {
            output: (bytes) => void write(bytes),
            state(s) {
              if (!isEnded(s.status) || ending) return;
              // Output written just before the end may still be on its way.
              ending = true;
              setTimeout(() => {
                stream.close();
                resolve(0);
              }, END_GRACE_MS);
            },
            connection: () => {},
            truncated: (m) => process.stderr.write(`[lia] ${m}\n`),
            error: (m) => process.stderr.write(`[lia] error: ${m}\n`),
            fatal: reject,
          },
          page.nextSeq,
        );
      });
    });
}

/** Writes to stdout, waiting when it is a slow pipe; a reader that has gone away ends quietly. */
function write(bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(bytes)) resolve();
    else process.stdout.once('drain', resolve);
  });
}
