/**
 * `./lia attach <id>`: the task's live terminal in this one. Raw mode (every key goes to the
 * task, Ctrl-C included), the window's size follows to the task's PTY, the stored output is
 * replayed first and a dropped connection picks up from the last seq, and Ctrl-] detaches and
 * leaves the task running. Typing into a suspended task resumes it, as on the web page.
 */
import { StringDecoder } from 'node:string_decoder';
import { Command } from 'commander';
import type { TaskStatus } from '../../api/types.js';
import { isEnded } from '../../common/task.js';
import { taskIdArg } from '../args.js';
import type { LiaClient } from '../client.js';
import { clientOf } from '../context.js';
import { CliError } from '../errors.js';
import { TaskStream } from '../stream.js';
import { DETACH_BYTE, DETACH_KEY_NAME, enterRaw, ModeTracker, say, windowSize } from '../terminal.js';

/** After the task ends, output still on its way is shown for this long before leaving. */
const END_GRACE_MS = 300;
/** On detach, how long to wait for typed input to be stored, so the last keys are not lost. */
const STORE_INPUT_MS = 3000;

export function attachCommand(): Command {
  return new Command('attach')
    .description(
      `the task's live terminal here: what it shows and what you type; ${DETACH_KEY_NAME} detaches ` +
        '(the task keeps running); typing into a suspended task resumes it',
    )
    .argument('<id>', 'the task id (./lia list shows yours)', taskIdArg)
    .action(async (id: string, _opts, cmd: Command) => {
      process.exitCode = await attach(clientOf(cmd), id);
    });
}

export async function attach(client: LiaClient, taskId: string): Promise<number> {
  const view = await client.task(taskId);
  if (isEnded(view.status))
    throw new CliError(
      `task ${taskId} has ${view.status}${view.error ? ` (${view.error})` : ''}: there is no terminal to attach to. ` +
        `Its output: ./lia output ${taskId}`,
    );
  let status: TaskStatus = view.status;
  say(
    `attached to ${taskId} (${view.runtime}, ${status}${status === 'suspended' ? ': type to resume it' : ''}); ` +
      `${DETACH_KEY_NAME} detaches, the task keeps running`,
    true,
  );

  const modes = new ModeTracker();
  const restore = enterRaw();
  const decoder = new StringDecoder('utf8');
  let resumingForInput = false;
  let offline = false;
  let ending: NodeJS.Timeout | undefined;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));

  const stream = new TaskStream(client, taskId, {
    output(bytes) {
      modes.see(bytes);
      process.stdout.write(bytes);
    },
    state(s) {
      const was = status;
      status = s.status;
      if (isEnded(s.status)) {
        const why = [s.error, s.exitCode === null ? '' : `exit code ${s.exitCode}`]
          .filter(Boolean)
          .join(', ');
        // Output written just before the end may still be on its way: show it, then leave.
        ending ??= setTimeout(
          () => void leave(s.status === 'failed' ? 1 : 0, `task ${s.status}${why ? ` (${why})` : ''}`, false),
          END_GRACE_MS,
        );
      } else if (s.status === 'suspended' && was !== 'suspended') {
        resumingForInput = false;
        say(`the task is suspended (idle): type to resume it, or ${DETACH_KEY_NAME} to detach`);
      } else if (s.status === 'starting' && was === 'suspended' && !resumingForInput) say('resuming…');
      else if (s.status === 'running' && (was === 'suspended' || resumingForInput)) {
        resumingForInput = false;
        say('running again');
      }
    },
    connection(c, why) {
      if (c === 'reconnecting' && !offline) {
        offline = true;
        say(`connection lost${why ? ` (${why})` : ''}; reconnecting, nothing will be missed…`);
      } else if (c === 'open' && offline) {
        offline = false;
        say('reconnected');
      }
    },
    truncated: (message) => say(message),
    error(message) {
      // E.g. input to a suspended task refused over the running-task quota: the next key asks again.
      resumingForInput = false;
      say(`error: ${message}`);
    },
    fatal: (err) => void leave(1, `error: ${err.message}`, false),
  });

  const size = windowSize(process.stdout);
  if (size) stream.resize(size.cols, size.rows);
  const onResize = () => {
    const s = windowSize(process.stdout);
    if (s) stream.resize(s.cols, s.rows);
  };

  const onData = (buf: Buffer) => {
    const at = buf.indexOf(DETACH_BYTE);
    const text = decoder.write(at === -1 ? buf : buf.subarray(0, at));
    if (text) {
      if (status === 'suspended' && !resumingForInput) {
        resumingForInput = true;
        say('resuming the task for your input…');
      }
      stream.input(text);
    }
    if (at !== -1) void leave(0, detached(taskId));
  };
  // Input from a pipe or file (not a terminal): its end detaches, once all of it is stored.
  const onEnd = () => void leave(0, `input ended; ${detached(taskId)}`);
  const onSignal = () => void leave(0, detached(taskId));

  let leaving = false;
  async function leave(code: number, message: string, storeInput = true): Promise<void> {
    if (leaving) return;
    leaving = true;
    clearTimeout(ending);
    process.stdin.off('data', onData).off('end', onEnd).pause();
    process.stdout.off('resize', onResize);
    for (const s of SIGNALS) process.off(s, onSignal);
    let note = '';
    if (storeInput && !(await stream.inputStored(STORE_INPUT_MS)))
      note = ' (the last keys typed were not confirmed stored: check the task)';
    stream.close();
    // The terminal as it was, before the last line: leaving the alternate screen first.
    if (process.stdout.isTTY) process.stdout.write(modes.reset());
    say(`${message}${note}`);
    restore();
    done(code);
  }

  process.stdin.on('data', onData).on('end', onEnd).resume();
  process.stdout.on('resize', onResize);
  for (const s of SIGNALS) process.on(s, onSignal);
  return finished;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function detached(taskId: string): string {
  return `detached; ${taskId} keeps running. Attach again: ./lia attach ${taskId}  Stop it: ./lia stop ${taskId}`;
}
