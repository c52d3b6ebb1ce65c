/**
 * What the CLI says when something goes wrong: the API's own message, then what to do about it.
 * A CliError is printed as is (no stack) and ends the command with its exit code.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Which Lia was asked, as whom (a Connection, less its token): for the hints. */
export interface Asker {
  url: string;
  user: string;
  userFrom: string;
}

/** Where a request went and on which task, for the hint. */
export interface Asked {
  route: string;
  taskId?: string;
}

/** The API answered with an error (`{ error: { code, message } }`): its message and the next step. */
export function apiError(conn: Asker, status: number, body: unknown, asked: Asked): CliError {
  const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  if (typeof e?.message !== 'string') {
    // Not Lia's error shape: something else answers at that address.
    return new CliError(
      `${conn.url} answered HTTP ${status} to ${asked.route}, which is not how Lia's API answers: ` +
        'check the address (--url or LIA_URL).',
    );
  }
  const who = `you are acting as user "${conn.user}" (${conn.userFrom})`;
  const id = asked.taskId;
  let hint: string | undefined;
  if (status === 401)
    hint =
      'The API did not accept the service token. On the machine that runs Lia, run ./lia from the same ' +
      'folder and state folder (LIA__STATE__DIR) as ./lia start; for another Lia, pass its service token ' +
      'with LIA_TOKEN (or --token).';
  else if (status === 403)
    hint = `${cap(who)}: act as the task's owner with --user <owner>, or see your own tasks with ./lia list.`;
  else if (status === 404 && e.code === 'not_found' && id)
    hint = `See your tasks with ./lia list (${who}, at ${conn.url}).`;
  else if (status === 404)
    hint = `Is ${conn.url} a Lia of this version? Check the address (--url or LIA_URL).`;
  else if (status === 409 && id) hint = `See its state with ./lia status ${id}.`;
  else if (status >= 500) hint = `(HTTP ${status}; the operator finds details in the API's log.)`;
  return new CliError(hint ? `${e.message}\n${hint}` : e.message);
}

/** fetch (or a WebSocket) could not reach the API at all: say whether Lia is down or the address is wrong. */
export function unreachable(conn: Asker, err: unknown): CliError {
  const code = networkCode(err);
  if (code === 'ECONNREFUSED')
    return new CliError(`Lia is not running at ${conn.url}: start it with ./lia start (or pass --url)`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new CliError(`cannot find the host of ${conn.url} (${code}): check --url or LIA_URL`);
  if (code === 'TIMEOUT')
    return new CliError(
      `Lia at ${conn.url} did not answer in time: is it overloaded or stuck? (./lia start's log)`,
    );
  const why = code ?? innermostMessage(err);
  return new CliError(
    `cannot reach Lia at ${conn.url} (${why}): is it running? (./lia start, or pass --url)`,
  );
}

/** The system error code behind a failed fetch or socket (undici hides it in `cause`). */
export function networkCode(err: unknown): string | undefined {
  for (
    let e = err as { code?: unknown; cause?: unknown; name?: unknown } | undefined;
    e;
    e = e.cause as never
  ) {
    if (e.name === 'TimeoutError') return 'TIMEOUT';
    if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** "fetch failed" says nothing: the innermost cause does (e.g. "bad port"). */
function innermostMessage(err: unknown): string {
  let e = err as { message?: unknown; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return typeof e?.message === 'string' ? e.message : String(err);
}

const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);
