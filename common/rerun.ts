/**
 * "Do it again if asked while doing it": runs `fn` one call at a time; calls that arrive while it
 * runs make it run exactly once more afterwards, however many there were. Wake-ups (a NOTIFY,
 * a timer) then never pile up, and none is lost between a read and the end of a run.
 */
export function coalesced(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const loop = async () => {
    try {
      do {
        again = false;
        await fn();
      } while (again);
    } finally {
      running = undefined;
    }
  };
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = loop();
    return running;
  };
}
