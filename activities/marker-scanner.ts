/**
 * Finds the markers a headless run prints in its output (common/guest-markers.ts) as the output
 * streams past, even when a chunk cuts one in two, and checks each: a forged or malformed one is
 * dropped. Bounded: a marker that never ends is forgotten past 64 KiB.
 */
import { MARKER_KINDS, MARKER_OSC_END, MARKER_OSC_PREFIX, type MarkerKind } from '../common/guest-markers.js';
import { type HeadlessSummary, headlessSummarySchema, turnMarkerSchema } from '../common/task.js';

const MAX_PENDING = 64 * 1024;

export type GuestMarker = { kind: 'summary'; summary: HeadlessSummary } | { kind: 'turn'; n: number };

export class MarkerScanner {
  private pending = '';

  /** Feeds output bytes; returns the markers completed by them (valid ones only), in order. */
  push(chunk: Buffer): GuestMarker[] {
    this.pending += chunk.toString('latin1');
    const found: GuestMarker[] = [];
    for (;;) {
      const start = this.pending.indexOf(MARKER_OSC_PREFIX);
      if (start < 0) {
        // Keep only what could be the beginning of a marker.
        this.pending = this.pending.slice(-(MARKER_OSC_PREFIX.length - 1));
        return found;
      }
      const end = this.pending.indexOf(MARKER_OSC_END, start + MARKER_OSC_PREFIX.length);
      if (end < 0) {
        this.pending = this.pending.slice(start);
        if (this.pending.length > MAX_PENDING) this.pending = '';
        return found;
      }
      const body = this.pending.slice(start + MARKER_OSC_PREFIX.length, end);
      this.pending = this.pending.slice(end + 1);
      const m = parse(body);
      if (m) found.push(m);
    }
  }
}

function parse(body: string): GuestMarker | undefined {
  const semi = body.indexOf(';');
  const kind = body.slice(0, semi) as MarkerKind;
  if (semi < 0 || !MARKER_KINDS.includes(kind)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.slice(semi + 1), 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (kind === 'summary') {
    const r = headlessSummarySchema.safeParse(json);
    return r.success ? { kind, summary: r.data } : undefined;
  }
  const r = turnMarkerSchema.safeParse(json);
  return r.success ? { kind, n: r.data.n } : undefined;
}
