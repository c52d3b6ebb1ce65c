/** The page's routes: /tasks/<id> is a task, / and /tasks the list; every page needs a link's token. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { TASK_ID_RE } from '../../common/task-id';
import { token } from './api';
import { TaskList } from './TaskList';
import { TaskPage } from './TaskPage';
import './styles.css';

function App() {
  if (!token())
    return (
      <main className="list">
        <h1>Lia</h1>
        <p>Open this page from the link the Lia bot gave you in Discord (its Open terminal button).</p>
      </main>
    );
  const task = /^\/tasks\/([^/]+)\/?$/.exec(location.pathname)?.[1];
  if (task && TASK_ID_RE.test(task)) return <TaskPage taskId={task} />;
  if (/^\/(tasks\/?)?$/.test(location.pathname)) return <TaskList />;
  return (
    <main className="list">
      <h1>Not found</h1>
      <p>
        There is no page at <code>{location.pathname}</code>. <a href="/">Your tasks</a>
      </p>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
