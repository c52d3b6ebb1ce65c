/**
 * A worker started by a test or benchmark harness exits when that harness dies, whatever way
 * it died: an orphaned host worker would keep heartbeating into the next run's database and
 * take its tasks. Enabled by LIA_EXIT_WITH_PARENT=1 (never in production, where workers are
 * services of their own).
 */
export function exitWithParent(onGone: () => void, everyMs = 500): void {
  if (process.env.LIA_EXIT_WITH_PARENT !== '1') return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) onGone();
  }, everyMs).unref();
}
