/** A task's workflow state as a coloured badge (the colour is never the only cue: the word is there). */

export function StatusBadge({ status, live }: { status: string | null; live?: boolean }) {
  return (
    <span
      className={`badge badge-${status ?? 'loading'}`}
      data-testid={live ? 'status' : undefined}
      role={live ? 'status' : undefined}
    >
      {status ?? '…'}
    </span>
  );
}
