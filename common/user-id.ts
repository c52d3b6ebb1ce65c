/**
 * The shape of a user id as a service names it (`X-Lia-User`): the API checks it, and the CLI
 * checks its own user before asking. No imports, so any client may share it.
 */
export const USER_ID_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;
export const USER_ID_RULE = '1–128 of A-Z a-z 0-9 _ . : @ -';
