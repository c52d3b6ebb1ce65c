/**
 * The session id Lia keeps for a task's Claude Code conversation: a UUID made from the task id,
 * so every turn of a headless task resumes the same session whatever restarted in between, and
 * nothing needs storing to know it.
 */
import { createHash } from 'node:crypto';

export function claudeSessionId(taskId: string): string {
  const h = createHash('sha256').update(`lia-claude-session:${taskId}`).digest('hex');
  // Version-4 shaped (Claude Code checks that --session-id is a UUID).
  const variant = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
