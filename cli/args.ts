/** Argument checks done before asking Lia, so a typo gets the rule at once (commander calls these). */
import { InvalidArgumentError } from 'commander';
import { TASK_ID_RE } from '../common/task-id.js';

export function taskIdArg(value: string): string {
  if (!TASK_ID_RE.test(value))
    throw new InvalidArgumentError(
      `${JSON.stringify(value)} is not a task id: one looks like t_ and 10 characters of a-z and 2-7, ` +
        'e.g. t_abcdefg234 (./lia list shows yours)',
    );
  return value;
}

export function wholeNumber(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

/** Repeatable options (`--file a --file b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
