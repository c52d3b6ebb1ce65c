/**
 * The guest scripts (the permission hook, the headless conversation driver) as the host sends
 * them: each bundled into one small CommonJS program, which the agent's command runs with
 * `node -e "$LIA_…"`. They travel in the agent's environment, built from this worker's sources,
 * so a change to them needs no new guest image, and a task runs the scripts of the host that
 * started it.
 */
import path from 'node:path';
import { buildSync } from 'esbuild';

const here = import.meta.dirname;
const SCRIPTS = {
  hook: path.join(here, 'permission-hook.ts'),
  driver: path.join(here, 'conversation-driver.ts'),
} as const;
export type GuestScript = keyof typeof SCRIPTS;

/** One environment string holds at most 128 KiB (Linux's MAX_ARG_STRLEN). */
const MAX_SCRIPT_BYTES = 100 * 1024;
const built = new Map<GuestScript, string>();

export function guestScript(name: GuestScript): string {
  let code = built.get(name);
  if (code === undefined) {
    const r = buildSync({
      entryPoints: [SCRIPTS[name]],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'cjs',
      target: 'node18',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
    code = r.outputFiles[0]!.text;
    if (Buffer.byteLength(code) > MAX_SCRIPT_BYTES)
      throw new Error(
        `the guest's ${name} script is ${Buffer.byteLength(code)} bytes, over ${MAX_SCRIPT_BYTES}`,
      );
    built.set(name, code);
  }
  return code;
}
