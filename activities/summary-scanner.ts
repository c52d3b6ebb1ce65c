/**
 * Finds the summary a headless run prints at its end — an OSC sequence terminals ignore — in the
 * output as it streams past, even when it is split across chunks.
 */
import { type HeadlessSummary, headlessSummarySchema } from '../common/task.js';

export const SUMMARY_OSC_START = '\x1b]7777;lia-summary;';
export const SUMMARY_OSC_END = '\x07';
const MAX_PENDING = 64 * 1024;

export class SummaryScanner {
  private pending = '';

  /** Feeds output bytes; returns a summary when one is complete (and valid). */
  push(chunk: Buffer): HeadlessSummary | undefined {
    this.pending += chunk.toString('latin1');
    const start = this.pending.indexOf(SUMMARY_OSC_START);
    if (start < 0) {
      // Keep only what could be the beginning of a marker.
      this.pending = this.pending.slice(-(SUMMARY_OSC_START.length - 1));
      return undefined;
    }
    const end = this.pending.indexOf(SUMMARY_OSC_END, start + SUMMARY_OSC_START.length);
    if (end < 0) {
      this.pending = this.pending.slice(start);
      if (this.pending.length > MAX_PENDING) this.pending = '';
      return undefined;
    }
    const b64 = this.pending.slice(start + SUMMARY_OSC_START.length, end);
    this.pending = this.pending.slice(end + 1);
    try {
      const r = headlessSummarySchema.safeParse(JSON.parse(Buffer.from(b64, 'base64').toString('utf8')));
      return r.success ? r.data : undefined;
    } catch {
      return undefined;
    }
  }
}
