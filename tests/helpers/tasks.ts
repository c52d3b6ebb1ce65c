/** What end-to-end tests do to tasks through the API, for one owner on a test stack. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from './env.js';
import type { TestStack } from './stack.js';

export function taskOps(s: TestStack, owner: string) {
  async function spawnShell(
    idleTimeoutSeconds = 600,
    who = owner,
  ): Promise<{ taskId: string; token: string }> {
    const res = await s.api('POST', '/api/v1/tasks', who, {
      prompt: 'a shell for tests',
      runtime: 'shell',
      idleTimeoutSeconds,
    });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const token = new URL(res.json.url).hash.replace('#token=', '');
    return { taskId: res.json.taskId, token: decodeURIComponent(token) };
  }

  async function view(
    taskId: string,
    who = owner,
  ): Promise<{ status: string; error: string | null } & Record<string, any>> {
    const res = await s.api('GET', `/api/v1/tasks/${taskId}`, who);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    return res.json;
  }

  const statusOf = async (taskId: string) => (await view(taskId)).status;

  const waitStatus = (taskId: string, status: string | RegExp, timeoutMs = 30_000) =>
    waitFor(
      `task ${taskId} to be ${status}`,
      async () => {
        const v = await view(taskId);
        return (typeof status === 'string' ? v.status === status : status.test(v.status)) ? v : undefined;
      },
      timeoutMs,
      100,
    );

  const vmDir = (taskId: string) => path.join(s.stateDir, 'hosts', s.config.host.id, 'vms', taskId);
  const agentPid = (taskId: string) => Number(fs.readFileSync(path.join(vmDir(taskId), 'agent.pid'), 'utf8'));
  const sidecarPid = (taskId: string) =>
    Number(fs.readFileSync(path.join(vmDir(taskId), 'sidecar.pid'), 'utf8'));

  /** Stops the task and waits until it has ended (its VM slot is free again). */
  async function stop(taskId: string, who = owner): Promise<void> {
    const r = await s.api('DELETE', `/api/v1/tasks/${taskId}`, who);
    if (r.status !== 202 && r.status !== 409) assert.fail(`stop ${taskId}: ${JSON.stringify(r.json)}`);
    await waitStatus(taskId, /^(terminated|failed)$/);
  }

  return { spawnShell, view, statusOf, waitStatus, vmDir, agentPid, sidecarPid, stop };
}
