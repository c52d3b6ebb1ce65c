/** A host session with a task's sidecar, and the agent's start (files first, then the command). */
import { getTaskRepoRow } from '../common/db/task-repo.js';
import { readTaskFiles } from '../common/db/tasks.js';
import type { Runtime } from '../common/task.js';
import { SidecarConnection } from '../vm/sidecar/client.js';
import { agentCommand } from './agent-command.js';
import type { HostActivityDeps } from './deps.js';
import { repoMessage } from './forge/task-repo.js';
import { liveSidecars } from './live-sidecars.js';

export const HELLO_TIMEOUT_MS = 15_000;

/** Connects to the task's sidecar and waits for its hello. */
export async function connectSidecar(
  d: Pick<HostActivityDeps, 'driver'>,
  taskId: string,
): Promise<SidecarConnection> {
  const conn = await SidecarConnection.open(await d.driver.connect(taskId), HELLO_TIMEOUT_MS);
  // The sidecar serves one host connection, the latest: others of this worker reach it through it.
  liveSidecars.set(taskId, conn);
  conn.onClose(() => {
    if (liveSidecars.get(taskId) === conn) liveSidecars.delete(taskId);
  });
  return conn;
}

/** Hands the task's files to the sidecar, then starts the agent (the sidecar ignores a second start). */
export async function sendStart(
  d: Pick<HostActivityDeps, 'pool' | 'config' | 'driver'>,
  conn: SidecarConnection,
  taskId: string,
  runtime: Runtime,
): Promise<void> {
  for (const f of await readTaskFiles(d.pool, taskId)) conn.send({ type: 'file', name: f.name }, f.data);
  // The repository's checkout (issue 20): the sidecar clones it before it starts the agent.
  const repo = await getTaskRepoRow(d.pool, taskId);
  if (repo) conn.send(repoMessage(d.config, taskId, repo, d.driver.guestEnv));
  conn.send({
    type: 'start',
    ...agentCommand(runtime, d.config, taskId, d.driver.guestEnv),
    cols: 120,
    rows: 32,
  });
}
