/** The user's tasks and their states, refreshed every few seconds. */
import { useEffect, useState } from 'react';
import { ApiError, api, type TaskListResponse, taskHref } from './api';
import { formatAgo } from './format';
import { StatusBadge } from './StatusBadge';

type Listed = TaskListResponse['tasks'][number];
const REFRESH_MS = 5000;

export function TaskList() {
  const [tasks, setTasks] = useState<Listed[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const load = () =>
      api<TaskListResponse>('GET', '/tasks')
        .then((r) => {
          setTasks(r.tasks);
          setError(null);
        })
        .catch((e: Error) => {
          setError(e.message);
          if (e instanceof ApiError && e.fatal) clearInterval(timer);
        });
    const timer = setInterval(load, REFRESH_MS);
    void load();
    return () => clearInterval(timer);
  }, []);
  return (
    <main className="list">
      <h1>Your tasks</h1>
      {error && (
        <div className="banner error" role="alert">
          {error}
        </div>
      )}
      {!tasks && !error && <p className="muted">Loading…</p>}
      {tasks && !tasks.length && <p>No tasks yet. Start one with /spawn in Discord.</p>}
      {tasks && tasks.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Task</th>
              <th>State</th>
              <th>Prompt</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {tasks.map((t) => (
              <tr key={t.id}>
                <td>
                  {/* Each row carries its own task's token: the one this tab has opens one task only. */}
                  <a href={taskHref(t)}>
                    <code>{t.id}</code>
                  </a>
                </td>
                <td>
                  <StatusBadge status={t.status} />
                </td>
                <td>{t.promptFirstLine}</td>
                <td className="muted" title={new Date(t.createdAt).toLocaleString()}>
                  {formatAgo(t.createdAt)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
