import { list } from './list.js';
import { resume } from './resume.js';
import { spawn } from './spawn.js';
import { spawnFile } from './spawn-file.js';
import { status } from './status.js';
import { stop } from './stop.js';
import type { Command } from './types.js';

export const commands: ReadonlyMap<string, Command> = new Map(
  [spawn, spawnFile, status, resume, stop, list].map((c) => [c.data.name, c]),
);
