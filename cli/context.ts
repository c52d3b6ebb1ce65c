/** What every subcommand needs from the command line: a client for the Lia it names, and paths. */
import path from 'node:path';
import type { Command } from 'commander';
import { LiaClient } from './client.js';
import { type ConnectionFlags, resolveConnection } from './connection.js';

/** A client for the Lia and user that the global options (or their defaults) name. */
export function clientOf(cmd: Command): LiaClient {
  return new LiaClient(resolveConnection(cmd.optsWithGlobals<ConnectionFlags>()));
}

/**
 * A path the user typed, from the folder they typed it in: `./lia` runs from the repository's
 * folder and passes the caller's as LIA_CLI_CWD.
 */
export function callerPath(p: string): string {
  return path.resolve(process.env.LIA_CLI_CWD ?? process.cwd(), p);
}
