import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { token } from './api';
import { TaskList } from './TaskList';
import { TaskPage } from './TaskPage';
import './styles.css';

function App() {
  if (!token())
    return (
      <main className="list">
        <h1>Lia</h1>
        <p>Open this page from the link the Lia bot gave you in Discord.</p>
      </main>
    );
  const m = /^\/tasks\/(t_[a-z2-7]{10})\/?$/.exec(location.pathname);
  return m ? <TaskPage taskId={m[1]!} /> : <TaskList />;
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
