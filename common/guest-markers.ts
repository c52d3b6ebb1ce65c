/**
 * What a headless Claude Code run tells the host through its own terminal output: OSC escape
 * sequences that terminals ignore, `ESC ] 7777 ; lia-<kind> ; <base64 JSON> BEL`, found by the
 * host's pump as the output streams past (activities/marker-scanner.ts). Riding in the output
 * makes them as durable as the output: numbered, kept by the sidecar until stored, replayed after
 * a restart. The guest writes them, so the host checks each one (common/task.ts's schemas).
 *
 *   lia-turn     {"n":2,"state":"running"}                a turn of the conversation started
 *   lia-summary  {"turn":2,"result":"…","isError":false,"numTurns":3,"durationMs":900}   it ended
 *
 * No imports: the guest's conversation driver is bundled with it.
 */
export const MARKER_OSC_PREFIX = '\x1b]7777;lia-';
export const MARKER_OSC_END = '\x07';
export const MARKER_KINDS = ['summary', 'turn'] as const;
export type MarkerKind = (typeof MARKER_KINDS)[number];

export function markerText(kind: MarkerKind, payload: object): string {
  return `${MARKER_OSC_PREFIX}${kind};${Buffer.from(JSON.stringify(payload)).toString('base64')}${MARKER_OSC_END}`;
}
