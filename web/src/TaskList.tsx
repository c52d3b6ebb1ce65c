/** The user's tasks and their states. */
import { useEffect, useState } from 'react';
import { api, type TaskView } from './api';

export function TaskList() {
  const [tasks, setTasks] = useState<(TaskView & { url: string })[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const load = () =>
      api<{ tasks: (TaskView & { url: string })[] }>('GET', '/tasks')
        .then((r) => setTasks(r.tasks))
        .catch((e: Error) => setError(e.message));
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <main className="list">
      <h1>Your tasks</h1>
      {error && <div className="banner error">{error}</div>}
      {tasks && !tasks.length && <p>No tasks yet. Start one with /spawn in Discord.</p>}
      {tasks && tasks.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>Task</th>
              <th>State</th>
              <th>Prompt</th>
            </tr>
          </thead>
          <tbody>
            {tasks.map((t) => (
              <tr key={t.id}>
                <td>
                  <a href={`/tasks/${t.id}`}>
                    <code>{t.id}</code>
                  </a>
                </td>
                <td>
                  <span className={`badge badge-${t.status}`}>{t.status}</span>
                </td>
                <td>{t.promptFirstLine}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
