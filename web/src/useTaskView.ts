/**
 * The task as the REST API sees it, read now and then: the first state before the stream says
 * anything, the tokens and cost (they change with model calls, not with the state), and whether
 * the link still opens this task at all (expired, foreign or deleted: `fatal`).
 */
import { useEffect, useState } from 'react';
import { ApiError, api, type TaskView } from './api';

const REFRESH_MS = 10_000;

export function useTaskView(taskId: string) {
  const [view, setView] = useState<TaskView | null>(null);
  const [fatal, setFatal] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    const load = () =>
      api<TaskView>('GET', `/tasks/${taskId}`)
        .then((v) => !stopped && setView(v))
        .catch((e: Error) => {
          if (stopped || !(e instanceof ApiError) || !e.fatal) return; // a blip: the next read retries
          setFatal(e.message);
          clearInterval(timer);
        });
    const timer = setInterval(load, REFRESH_MS);
    void load();
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [taskId]);
  return { view, fatal };
}
