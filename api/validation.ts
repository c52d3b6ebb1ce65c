/** Request bodies and queries, checked at the edge (zod): bad input never reaches the service. */
import { z } from 'zod';
import { permissionModeSchema } from '../common/conversation.js';
import { fileNameSchema, LIMITS, promptSchema, RUNTIMES } from '../common/task.js';
import { invalid } from './errors.js';

export const createTaskSchema = z
  .object({
    prompt: promptSchema,
    runtime: z.enum(RUNTIMES).default('claude'),
    /** Claude Code's permission mode; default LIA__AGENT__PERMISSION_MODE (a shell has none). */
    permissionMode: permissionModeSchema.optional(),
    idleTimeoutSeconds: z
      .number()
      .int('idleTimeoutSeconds must be a whole number of seconds')
      .min(LIMITS.idleTimeoutSeconds.min)
      .max(LIMITS.idleTimeoutSeconds.max)
      .optional(),
    files: z
      .array(
        z
          .object({
            name: fileNameSchema,
            content: z.base64('content must be the file encoded as base64'),
          })
          .strict(),
      )
      .max(LIMITS.filesMax, `at most ${LIMITS.filesMax} files per task`)
      .default([]),
    /** The forge repository to check out (owner/name or an https URL), on branch lia/<task id>. */
    repo: z.string().min(3).max(300, 'repo is at most 300 characters').optional(),
    /** The base branch to start from (default: the repository's default branch); needs `repo`. */
    branch: z.string().min(1).max(200, 'branch is at most 200 characters').optional(),
    /**
     * A headless task with a repository: push and open (or update) the pull request after every
     * turn that changed it (default: LIA__FORGE__PULL_REQUEST_AFTER_TURN).
     */
    autoPullRequest: z.boolean().optional(),
  })
  .strict();

/** Most output one GET /output answer carries; `nextSeq` says where the next page starts. */
export const OUTPUT_PAGE_MAX_BYTES = { json: 1024 * 1024, raw: 8 * 1024 * 1024 } as const;

export const outputQuery = z.object({
  from: z.coerce.number().int().min(1, 'from is a seq, 1 or more').max(Number.MAX_SAFE_INTEGER).default(1),
  format: z.enum(['json', 'raw']).default('json'),
  maxBytes: z.coerce
    .number()
    .int()
    .min(1024, 'maxBytes is at least 1024')
    .max(OUTPUT_PAGE_MAX_BYTES.raw, `maxBytes is at most ${OUTPUT_PAGE_MAX_BYTES.raw}`)
    .optional(),
});

export async function readJson(req: { text(): Promise<string> }): Promise<unknown> {
  const text = await req.text();
  if (!text.trim()) throw invalid('the request needs a JSON body');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`the body is not valid JSON: ${(err as Error).message}`);
  }
}
