/**
 * Files given to /spawn-file: size and type checked before downloading (Discord states the
 * size), the download itself capped all the same (what is read is what counts, whoever serves
 * it), and a file name that is safe in the agent's working directory.
 */
import { fileNameSchema, LIMITS } from '../common/task.js';
import { Refusal } from './errors.js';

/** Text, data and archives an agent can work with; no executables or disk images. */
const ALLOWED_TYPES = [
  /^text\//,
  /^application\/(json|xml|yaml|x-yaml|toml|javascript|typescript|x-sh|sql|pdf|zip|gzip|x-gzip|x-tar|x-bzip2|x-xz|octet-stream)$/,
  /^image\/(png|jpeg|gif|webp|svg\+xml)$/,
];
const REFUSED_EXTENSIONS = /\.(exe|dll|so|dylib|msi|bin|iso|img|qcow2|apk|deb|rpm)$/i;

export interface Attachmentish {
  name: string;
  url: string;
  size: number;
  contentType: string | null;
}

/** A name the task accepts: letters, digits, `._- `, no leading dot or dash, not PROMPT.md. */
export function safeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  let safe = base
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._ -]/g, '_')
    .replace(/^[.\- ]+/, '')
    .slice(-128)
    .trim();
  if (!safe || !fileNameSchema.safeParse(safe).success) safe = 'upload';
  if (safe === 'PROMPT.md') safe = 'PROMPT.attached.md';
  return safe;
}

export function checkAttachment(a: Attachmentish): string | undefined {
  const limitMiB = LIMITS.fileMaxBytes / 1024 / 1024;
  if (a.size > LIMITS.fileMaxBytes)
    return `The file is ${(a.size / 1024 / 1024).toFixed(1)} MiB; the limit is ${limitMiB} MiB.`;
  const type = (a.contentType ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
  if (!ALLOWED_TYPES.some((re) => re.test(type)) || REFUSED_EXTENSIONS.test(a.name))
    return `Files of type ${type} (${a.name}) are not accepted: send text, source, data, images or an archive.`;
  return undefined;
}

export async function downloadAttachment(
  a: Attachmentish,
  timeoutMs = 20_000,
): Promise<{ name: string; data: Buffer }> {
  const refusal = checkAttachment(a);
  if (refusal) throw new Refusal(refusal);
  const res = await fetch(a.url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok || !res.body)
    throw new Refusal(`Could not download ${a.name} (HTTP ${res.status}); try again.`);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > LIMITS.fileMaxBytes)
      throw new Refusal(`The file is larger than ${LIMITS.fileMaxBytes / 1024 / 1024} MiB.`);
    parts.push(Buffer.from(chunk));
  }
  return { name: safeFileName(a.name), data: Buffer.concat(parts) };
}
