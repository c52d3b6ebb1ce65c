/**
 * Where Lia is and who is asking. Each of the three comes from a flag, else an environment
 * variable, else Lia's own configuration on this machine — the same `LIA__*` variables and
 * `.env` that `./lia start` reads, so on the machine that runs Lia nothing needs to be given:
 *
 *   address  --url    LIA_URL    else LIA__SERVER__PUBLIC_URL, else http://LIA__SERVER__HOST:LIA__SERVER__PORT
 *   token    --token  LIA_TOKEN  else LIA__API__SERVICE_TOKEN, else <state dir>/secrets/service-token
 *   user     --user   LIA_USER   else the login name of whoever runs the CLI
 *
 * The token is a secret: it is sent in a header only, never printed or put in a URL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Config, ConfigError, loadConfig, publicUrl } from '../common/config.js';
import { USER_ID_RE, USER_ID_RULE } from '../common/user-id.js';
import { CliError } from './errors.js';

export interface ConnectionFlags {
  url?: string;
  token?: string;
  user?: string;
}

export interface Connection {
  /** The API's base URL, without a trailing slash. */
  url: string;
  token: string;
  user: string;
  /** Where the user id came from, for error hints ("--user", "LIA_USER", "your login name"). */
  userFrom: string;
}

export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  // Lia's configuration is read only when a flag or variable does not already say it, so a
  // remote Lia can be used from a machine whose own LIA__* settings are incomplete.
  let config: Config | undefined;
  const lia = () => (config ??= readConfig(env));

  const rawUrl = flags.url ?? env.LIA_URL ?? publicUrl(lia());
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new CliError(
      `${JSON.stringify(rawUrl)} is not a URL: give Lia's address, e.g. http://127.0.0.1:3000`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliError(`Lia's address must be http:// or https://, not ${url.protocol}//`);

  const token = flags.token ?? env.LIA_TOKEN ?? lia().api.service_token ?? tokenFromStateDir(lia());

  const [user, userFrom] = flags.user
    ? [flags.user, '--user']
    : env.LIA_USER
      ? [env.LIA_USER, 'LIA_USER']
      : [loginName(), 'your login name'];
  if (!USER_ID_RE.test(user))
    throw new CliError(
      `the user id ${JSON.stringify(user)} (${userFrom}) must be ${USER_ID_RULE}: pass --user`,
    );

  return { url: url.href.replace(/\/+$/, ''), token, user, userFrom };
}

function readConfig(env: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new CliError(
      `${err.message}\nThe CLI reads Lia's configuration for its address and token: fix it, or pass --url and LIA_TOKEN.`,
    );
  }
}

/** The token `./lia start` generated and kept in its state folder (scripts/stack.ts). */
function tokenFromStateDir(config: Config): string {
  const file = path.join(config.state.dir, 'secrets', 'service-token');
  let token: string;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new CliError(
        `no service token: ${file} does not exist. Start Lia once with ./lia start (it creates it), ` +
          'or, for a Lia elsewhere, set LIA_URL and LIA_TOKEN (or pass --url and --token).',
      );
    throw new CliError(
      `cannot read the service token in ${file} (${code}): run the CLI as the user that started Lia, or set LIA_TOKEN.`,
    );
  }
  if (!token)
    throw new CliError(`${file} is empty: delete it and restart Lia (./lia start), or set LIA_TOKEN.`);
  return token;
}

function loginName(): string {
  try {
    return os.userInfo().username;
  } catch {
    // A uid without a passwd entry (some containers).
    const name = process.env.USER ?? process.env.LOGNAME;
    if (name) return name;
    throw new CliError('cannot tell your login name: name the user to act as with --user or LIA_USER');
  }
}
