/** A host session with a task's sidecar, and the agent's start (files first, then the command). */
import { randomBytes } from 'node:crypto';
import { getTaskRepoRow } from '../common/db/task-repo.js';
import { getTask, readTaskFiles } from '../common/db/tasks.js';
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
  const mode = (await getTask(d.pool, taskId))?.permissionMode ?? null;
  // The repository's checkout (issue 20): the sidecar clones it before it starts the agent.
  const repo = await getTaskRepoRow(d.pool, taskId);
  if (repo) conn.send(repoMessage(d.config, taskId, repo, d.driver.guestEnv));
  conn.send({
    type: 'start',
    ...agentCommand(runtime, d.config, taskId, d.driver.guestEnv, mode),
    cols: 120,
    rows: 32,
    identity: guestIdentity(taskId),
  });
}

/**
 * The VM's own identity (applied by a sidecar in a VM before the agent starts): a VM restored
 * from a template shares everything else with its siblings, so none of this may come from it.
 */
export function guestIdentity(taskId: string) {
  return {
    hostname: `lia-${taskId.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63),
    machineId: randomBytes(16).toString('hex'),
    seed: randomBytes(64).toString('hex'),
    timeMs: Date.now(),
  };
}
