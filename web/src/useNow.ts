/** The current time, refreshed every `ms`, for countdowns that re-render on their own. */
import { useEffect, useState } from 'react';

export function useNow(ms: number, now: () => number = Date.now): number {
  const [t, setT] = useState(now());
  useEffect(() => {
    const timer = setInterval(() => setT(now()), ms);
    return () => clearInterval(timer);
  }, [ms, now]);
  return t;
}
