/**
 * What Discord refuses in what a bot sends, for the stand-in: the limits on message content,
 * embeds, components and autocomplete choices, and Discord's error bodies (codes as in
 * discord-api-types' RESTJSONErrorCodes). Lengths count characters (code points), as Discord does.
 */

export interface DiscordError {
  status: number;
  body: { message: string; code: number; errors?: unknown };
}

export const err = (status: number, code: number, message: string, errors?: unknown): DiscordError => ({
  status,
  body: errors === undefined ? { message, code } : { message, code, errors },
});

/** The refusals the stand-in gives (and that tests inject), with Discord's codes and statuses. */
export const ERRORS = {
  unknownChannel: () => err(404, 10003, 'Unknown Channel'),
  unknownMessage: () => err(404, 10008, 'Unknown Message'),
  unknownWebhook: () => err(404, 10015, 'Unknown Webhook'),
  unknownInteraction: () => err(404, 10062, 'Unknown interaction'),
  alreadyAcknowledged: () => err(400, 40060, 'Interaction has already been acknowledged.'),
  cannotSendInForum: () => err(400, 40058, 'Cannot send messages in a forum channel'),
  missingAccess: () => err(403, 50001, 'Missing Access'),
  emptyMessage: () => err(400, 50006, 'Cannot send an empty message'),
  missingPermissions: () => err(403, 50013, 'Missing Permissions'),
  wrongChannelType: () => err(400, 50024, 'Cannot execute action on this channel type'),
  invalidWebhookToken: () => err(401, 50027, 'Invalid Webhook Token'),
  archivedThread: () => err(400, 50083, 'Thread is archived'),
  threadLocked: () => err(400, 160005, 'Thread is locked'),
  unauthorized: () => err(401, 0, '401: Unauthorized'),
  notFound: () => err(404, 0, '404: Not Found'),
  invalidForm: (problems: Problem[]) => err(400, 50035, 'Invalid Form Body', nest(problems)),
};

export interface Problem {
  path: string;
  code: string;
  message: string;
}

/** Discord's `errors` object: the problems nested by their path, each leaf an `_errors` list. */
function nest(problems: Problem[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const p of problems) {
    let node = root;
    for (const key of p.path.split('.')) {
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
    node._errors ??= [];
    (node._errors as unknown[]).push({ code: p.code, message: p.message });
  }
  return root;
}

const len = (s: unknown) => (typeof s === 'string' ? [...s].length : 0);

function maxLength(out: Problem[], path: string, value: unknown, max: number, min = 0): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string') {
    out.push({ path, code: 'STRING_TYPE_CONVERT', message: 'Must be a string.' });
    return;
  }
  const n = len(value);
  if (n > max || n < min)
    out.push({
      path,
      code: 'BASE_TYPE_BAD_LENGTH',
      message: `Must be between ${min} and ${max} in length.`,
    });
}

const LIMITS = {
  content: 2000,
  embeds: 10,
  embedTitle: 256,
  embedDescription: 4096,
  embedFields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  author: 256,
  embedsTotal: 6000,
  actionRows: 5,
  rowComponents: 5,
  buttonLabel: 80,
  customId: 100,
  buttonUrl: 512,
  choices: 25,
  choiceName: 100,
  choiceValue: 100,
};

interface Embedish {
  title?: string;
  description?: string;
  fields?: { name?: string; value?: string }[];
  footer?: { text?: string };
  author?: { name?: string };
}

function embedProblems(out: Problem[], embeds: unknown): void {
  if (embeds === undefined || embeds === null) return;
  if (!Array.isArray(embeds) || embeds.length > LIMITS.embeds) {
    out.push({ path: 'embeds', code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 10 or fewer in length.' });
    return;
  }
  let total = 0;
  embeds.forEach((e: Embedish, n) => {
    const at = `embeds.${n}`;
    maxLength(out, `${at}.title`, e.title, LIMITS.embedTitle);
    maxLength(out, `${at}.description`, e.description, LIMITS.embedDescription);
    maxLength(out, `${at}.footer.text`, e.footer?.text, LIMITS.footer);
    maxLength(out, `${at}.author.name`, e.author?.name, LIMITS.author);
    total += len(e.title) + len(e.description) + len(e.footer?.text) + len(e.author?.name);
    const fields = e.fields ?? [];
    if (fields.length > LIMITS.embedFields)
      out.push({
        path: `${at}.fields`,
        code: 'BASE_TYPE_MAX_LENGTH',
        message: 'Must be 25 or fewer in length.',
      });
    fields.forEach((f, k) => {
      maxLength(out, `${at}.fields.${k}.name`, f.name ?? '', LIMITS.fieldName, 1);
      maxLength(out, `${at}.fields.${k}.value`, f.value ?? '', LIMITS.fieldValue, 1);
      total += len(f.name) + len(f.value);
    });
  });
  if (total > LIMITS.embedsTotal)
    out.push({
      path: 'embeds',
      code: 'MAX_EMBED_SIZE_EXCEEDED',
      message: 'Embed size exceeds maximum size of 6000',
    });
}

interface Componentish {
  type?: number;
  style?: number;
  label?: string;
  custom_id?: string;
  url?: string;
  components?: Componentish[];
}

/** Action rows of buttons (all the bot sends): counts, labels, ids, and link URLs. */
function componentProblems(out: Problem[], components: unknown): void {
  if (components === undefined || components === null) return;
  if (!Array.isArray(components) || components.length > LIMITS.actionRows) {
    out.push({ path: 'components', code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 5 or fewer in length.' });
    return;
  }
  components.forEach((row: Componentish, n) => {
    const at = `components.${n}`;
    if (row.type !== 1) {
      out.push({ path: `${at}.type`, code: 'UNION_TYPE_CHOICES', message: 'Value must be an action row.' });
      return;
    }
    const inner = row.components ?? [];
    if (inner.length < 1 || inner.length > LIMITS.rowComponents)
      out.push({
        path: `${at}.components`,
        code: 'BASE_TYPE_BAD_LENGTH',
        message: 'Must be between 1 and 5 in length.',
      });
    inner.forEach((b, k) => {
      const bt = `${at}.components.${k}`;
      if (b.type !== 2) return;
      maxLength(out, `${bt}.label`, b.label, LIMITS.buttonLabel);
      if (b.style === 5) {
        if (b.custom_id !== undefined)
          out.push({
            path: `${bt}.custom_id`,
            code: 'BUTTON_COMPONENT_INVALID',
            message: 'A link button cannot have a custom id.',
          });
        maxLength(out, `${bt}.url`, b.url ?? '', LIMITS.buttonUrl, 1);
        if (b.url && !/^(https?|discord):\/\/[^\s]+$/i.test(b.url))
          out.push({ path: `${bt}.url`, code: 'URL_TYPE_INVALID_URL', message: 'Not a well formed URL.' });
      } else {
        if (b.url !== undefined)
          out.push({
            path: `${bt}.url`,
            code: 'BUTTON_COMPONENT_INVALID',
            message: 'Only link buttons have a URL.',
          });
        maxLength(out, `${bt}.custom_id`, b.custom_id ?? '', LIMITS.customId, 1);
      }
    });
  });
}

/**
 * A message body (channel message, interaction response, follow-up or edit). A new message
 * needs something to show; an edit (`partial`) may change one field only.
 */
export function messageProblems(body: Record<string, unknown>, partial: boolean): DiscordError | undefined {
  const out: Problem[] = [];
  if (body.content !== undefined && body.content !== null)
    maxLength(out, 'content', body.content, LIMITS.content);
  embedProblems(out, body.embeds);
  componentProblems(out, body.components);
  if (out.length) return ERRORS.invalidForm(out);
  const shows =
    len(body.content) > 0 ||
    (Array.isArray(body.embeds) && body.embeds.length > 0) ||
    (Array.isArray(body.components) && body.components.length > 0) ||
    (Array.isArray(body.attachments) && body.attachments.length > 0) ||
    body.poll !== undefined;
  if (!partial && !shows) return ERRORS.emptyMessage();
  return undefined;
}

/** An autocomplete result: at most 25 choices, each name 1–100 and value at most 100 characters. */
export function choiceProblems(choices: unknown): DiscordError | undefined {
  const out: Problem[] = [];
  if (!Array.isArray(choices) || choices.length > LIMITS.choices) {
    out.push({
      path: 'data.choices',
      code: 'BASE_TYPE_MAX_LENGTH',
      message: 'Must be 25 or fewer in length.',
    });
  } else {
    choices.forEach((c: { name?: unknown; value?: unknown }, n) => {
      maxLength(out, `data.choices.${n}.name`, c.name ?? '', LIMITS.choiceName, 1);
      if (typeof c.value === 'string') maxLength(out, `data.choices.${n}.value`, c.value, LIMITS.choiceValue);
    });
  }
  return out.length ? ERRORS.invalidForm(out) : undefined;
}

/** Which first responses each interaction type takes (Discord's interaction callback types). */
export const ALLOWED_CALLBACKS: Record<number, number[]> = {
  1: [1], // PING: PONG
  2: [4, 5, 9], // application command: message, deferred message, modal
  3: [4, 5, 6, 7, 9], // component: also deferred update and update
  4: [8], // autocomplete: choices only
  5: [4, 5, 6, 7], // modal submit
};

export const THREAD_ARCHIVE_DURATIONS = [60, 1440, 4320, 10080];
