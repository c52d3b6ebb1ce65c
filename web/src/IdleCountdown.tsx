/** Time left until the idle timer suspends a running task (the deadline is the server's clock). */
import { serverNow } from './api';
import { formatLeft } from './format';
import { useNow } from './useNow';

export function IdleCountdown({ deadline }: { deadline: number }) {
  const now = useNow(1000, serverNow);
  return (
    <span className="muted" data-testid="idle" title="Any keystroke or output restarts the idle timer">
      suspends when idle in {formatLeft(deadline - now)}
    </span>
  );
}
