/**
 * The bounds of a task's diff (issue 20), shared by the sidecar that takes it in the guest and
 * the host that checks it (common/diff.ts). Free of imports: the sidecar's bundle takes it.
 */
export const DIFF_LIMITS = {
  /** Files listed with their counts; past it, only how many more. */
  files: 1000,
  /** The listed files together, as JSON (bytes): what keeps the frame under the guest's body limit. */
  pathBytes: 96 * 1024,
  path: 4096,
  /** The unified diff's text (UTF-8 bytes); past it, cut at a line and marked truncated. */
  patchBytes: 384 * 1024,
  /** The whole answer as JSON: under the host's limit for a guest's frame body (512 KiB). */
  bodyBytes: 500 * 1024,
  /** git's work in the guest (a huge untracked tree): past it, the diff fails with the reason. */
  guestMs: 60_000,
} as const;
