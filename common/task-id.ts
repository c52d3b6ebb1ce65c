/**
 * The task id's shape: `t_` + 10 lower-case base32 characters (RFC 4648 alphabet): short,
 * URL-safe, unambiguous. No imports, so the web page shares it too.
 */
export const TASK_ID_RE = /^t_[a-z2-7]{10}$/;
