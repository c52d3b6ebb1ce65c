import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A new task id: `t_` + 10 base32 characters (50 random bits). */
export function newTaskId(): string {
  const bytes = randomBytes(10);
  let id = 't_';
  for (const b of bytes) id += ALPHABET[b & 31];
  return id;
}
