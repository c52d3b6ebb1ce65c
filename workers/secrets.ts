/** Secrets Lia makes for itself when they are not configured: kept in the state folder, mode 0600. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** A secret from the config, else one kept in `<stateDir>/secrets/<name>` across runs (made on first use). */
export function keptSecret(
  stateDir: string,
  name: string,
  configured: string | undefined,
): { value: string; file?: string } {
  if (configured) return { value: configured };
  const dir = path.join(stateDir, 'secrets');
  const file = path.join(dir, name);
  if (fs.existsSync(file)) return { value: fs.readFileSync(file, 'utf8').trim(), file };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const value = randomBytes(32).toString('base64url');
  fs.writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return { value, file };
}
