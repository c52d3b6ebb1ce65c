/**
 * The task service: what the API and the bot do to tasks, in one implementation, so a slash
 * command and a REST call behave the same. It starts workflows and sends signals, updates and
 * queries; it never touches a VM. Errors are TaskErrors whose messages say what to fix.
 */
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import type { PullRequestResult } from '../common/activities.js';
import { type Config, publicUrl } from '../common/config.js';
import {
  type Choice,
  CONVERSATION_LIMITS,
  type ConversationView,
  type DecisionView,
  describeDecision,
  type PermissionMode,
  type TurnView,
} from '../common/conversation.js';
import {
  decisions,
  doneTurnsAfter,
  enqueueTurn,
  openQuestions,
  questionsOf,
  turnsOf,
} from '../common/db/conversation.js';
import { queuePlace } from '../common/db/hosts.js';
import { enqueueInput, type InputOrigin, pendingInputBytes } from '../common/db/input.js';
import type { Pool } from '../common/db/pool.js';
import { setTaskRepoRow } from '../common/db/task-repo.js';
import {
  countRunning,
  createTask,
  deleteTask,
  getTask,
  linksNotBefore,
  listTasks,
  revokeLinks,
  type TaskRow,
} from '../common/db/tasks.js';
import type { DiffView } from '../common/diff.js';
import { newTaskId } from '../common/ids.js';
import { asksForPullRequest, isBarePullRequestAsk } from '../common/pull-request.js';
import { CONTROL_QUEUE } from '../common/queues.js';
import { OWNER_KEY, STATUS_KEY } from '../common/search-attributes.js';
import {
  activityReportInterval,
  firstLine,
  isEnded,
  isEnding,
  LIMITS,
  type Runtime,
  type TaskInput,
  type TaskState,
  type TaskStatus,
} from '../common/task.js';
import type { agentTask } from '../workflows/agentTask.js';
import {
  answerUpdate,
  openPullRequestUpdate,
  resumeUpdate,
  stateQuery,
  terminateSignal,
  WORKFLOW_TYPE,
} from '../workflows/definitions.js';
import { taskDiff } from './diff.js';
import { TaskError } from './errors.js';
import { type LinkSigner, taskUrl } from './links.js';
import { liveQuotaError, runningQuotaError } from './quotas.js';
import { checkRepo } from './repo.js';
import { type TaskView, toView } from './views.js';

export { TaskError, type TaskErrorCode } from './errors.js';
export type { TaskView } from './views.js';

/** Who is asking. Admins may act on every task. */
export interface Actor {
  userId: string;
  admin: boolean;
}

export interface NewTask {
  prompt: string;
  runtime: Runtime;
  files: { name: string; data: Buffer }[];
  idleTimeoutSeconds?: number;
  /** Claude Code's permission mode (default: LIA__AGENT__PERMISSION_MODE); a shell has none. */
  permissionMode?: PermissionMode;
  /** A forge repository (owner/name or URL) to check out, and its base branch (issue 20). */
  repo?: string;
  branch?: string;
  /** A pull request after every headless turn that changed the repository (default: LIA__FORGE__PULL_REQUEST_AFTER_TURN). */
  autoPullRequest?: boolean;
}

/** What became of a follow-up message: a turn of the conversation, or keystrokes. */
export type FollowUp =
  | { kind: 'turn'; n: number; ahead: number; status: TaskStatus; pullRequestAfter?: boolean }
  | { kind: 'typed'; status: TaskStatus }
  /** The message only asked for the pull request: Lia opened it, the agent was not asked. */
  | { kind: 'pull-request'; pullRequest: PullRequestResult };

export class TaskService {
  constructor(
    private readonly temporal: Client,
    private readonly pool: Pool,
    private readonly config: Config,
    private readonly links: LinkSigner,
    /**
     * The client shares its NativeConnection with a control worker in this process: the server
     * then hands the workflow's first task straight back to that worker (eager start), skipping
     * a trip through its task queue.
     */
    private readonly options: { eagerStart?: boolean } = {},
  ) {}

  async create(actor: Actor, t: NewTask): Promise<{ taskId: string; url: string; status: TaskStatus }> {
    let fileBytes = 0;
    for (const f of t.files) fileBytes += f.data.length;
    if (t.files.length > LIMITS.filesMax)
      throw new TaskError('invalid', `at most ${LIMITS.filesMax} files per task`);
    if (fileBytes > LIMITS.filesTotalMaxBytes) {
      throw new TaskError(
        'invalid',
        `files may total at most ${LIMITS.filesTotalMaxBytes / 1024 / 1024} MiB`,
      );
    }
    if (t.files.some((f) => f.name === 'PROMPT.md'))
      throw new TaskError('invalid', 'PROMPT.md is reserved for the prompt');
    const repo = checkRepo(t, this.config);
    const taskId = newTaskId();
    const permissionMode =
      t.runtime === 'shell' ? null : (t.permissionMode ?? this.config.agent.permission_mode);
    const idleTimeoutMs = (t.idleTimeoutSeconds ?? this.config.vm.idle_timeout_minutes * 60) * 1000;
    const input: TaskInput = {
      taskId,
      owner: actor.userId,
      runtime: t.runtime,
      promptFirstLine: firstLine(t.prompt),
      limits: {
        idleTimeoutMs,
        lifetimeMs: this.config.vm.max_lifetime_hours * 3_600_000,
        maxSuspendedMs: this.config.vm.max_suspended_hours * 3_600_000,
        vcpus: this.config.vm.vcpus,
        memoryMib: this.config.vm.memory_mib,
        storageGb: this.config.vm.default_storage_gb,
      },
      activityReportMs: activityReportInterval(idleTimeoutMs),
      maxQueueWaitMs: this.config.queue.max_wait_minutes * 60_000,
      questionTimeoutMs: Math.round(this.config.agent.question_timeout_minutes * 60_000),
      ...(this.config.temporal.max_history_events
        ? { maxHistoryEvents: this.config.temporal.max_history_events }
        : {}),
    };
    const {
      live_tasks_per_user: live,
      running_tasks_per_user: running,
      live_tasks_total: total,
    } = this.config.quota;
    const refused = await createTask(
      this.pool,
      {
        id: taskId,
        owner: actor.userId,
        runtime: t.runtime,
        promptFirstLine: input.promptFirstLine,
        permissionMode,
        // A headless conversation's first turn is the prompt (the next ones are follow-ups).
        ...(t.runtime === 'claude-headless' ? { firstTurn: t.prompt } : {}),
        files: [{ name: 'PROMPT.md', data: Buffer.from(t.prompt, 'utf8') }, ...t.files],
        size: input.limits,
      },
      { live, running, total },
    );
    if (refused === 'total')
      throw new TaskError(
        'quota',
        `Lia has ${total} tasks open, its limit for all users; try again when some have ended`,
      );
    if (refused === 'live') throw liveQuotaError(live);
    if (refused === 'running') throw runningQuotaError(running, 'start another');
    if (repo)
      await setTaskRepoRow(
        this.pool,
        taskId,
        repo,
        t.runtime === 'claude-headless' && (t.autoPullRequest ?? this.config.forge.pull_request_after_turn),
      );
    try {
      await this.temporal.workflow.start<typeof agentTask>(WORKFLOW_TYPE, {
        workflowId: taskId,
        taskQueue: CONTROL_QUEUE,
        args: [input],
        typedSearchAttributes: [
          { key: OWNER_KEY, value: actor.userId },
          { key: STATUS_KEY, value: 'pending' },
        ],
        memo: {
          prompt: input.promptFirstLine,
          runtime: t.runtime,
          ...(permissionMode ? { permissionMode } : {}),
        },
        requestEagerStart: this.options.eagerStart,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        await deleteTask(this.pool, taskId).catch(() => {});
        throw new TaskError('conflict', 'task id collision; try again');
      }
      // The start may have happened (a timeout after the server took it): ask before undoing.
      const started = await this.temporal.workflow
        .getHandle(taskId)
        .describe()
        .then(
          () => true,
          (e) => (e instanceof WorkflowNotFoundError ? false : undefined),
        );
      if (!started) {
        // Nothing may be left behind: the row would count against the user's quota. When
        // Temporal cannot say, the row stays and the sweeper closes it if no workflow appears.
        if (started === false) await deleteTask(this.pool, taskId).catch(() => {});
        throw new TaskError('unavailable', `could not start the task workflow: ${(err as Error).message}`);
      }
    }
    return { taskId, url: await this.link(actor.userId, taskId), status: 'pending' };
  }

  /**
   * The task's view, from its row: the workflow projects its status and idle deadline there
   * (and the row changes are pushed over the task bus), so reading a task never asks Temporal.
   */
  async get(actor: Actor, taskId: string): Promise<TaskView> {
    return this.withQueue(toView(await this.ownRow(actor, taskId)));
  }

  /**
   * A waiting task's place in the queue, and a guess of its wait: its place over the rate at
   * which tasks ended in the last hour (none ended: no guess).
   */
  private async withQueue(view: TaskView): Promise<TaskView> {
    if (view.status !== 'pending') return view;
    const q = await queuePlace(this.pool, view.id);
    if (!q) return view;
    const estimateSeconds = q.endedLastHour ? Math.round((q.position * 3600) / q.endedLastHour) : undefined;
    return { ...view, queue: { position: q.position, ...(estimateSeconds ? { estimateSeconds } : {}) } };
  }

  /**
   * The task's view without an actor's check: for the service's own relays (a task's Discord
   * thread follows the task whoever looks at it). Undefined for an unknown task.
   */
  async peek(taskId: string): Promise<TaskView | undefined> {
    const row = await getTask(this.pool, taskId);
    return row && this.withQueue(toView(row));
  }

  async list(actor: Actor, all = false): Promise<TaskView[]> {
    const rows = await listTasks(this.pool, all && actor.admin ? undefined : actor.userId);
    return rows.map(toView);
  }

  /** Resumes a suspended task and waits until it runs again (or fails). */
  async resume(
    actor: Actor,
    taskId: string,
    wait: 'accepted' | 'completed' = 'completed',
  ): Promise<TaskState | undefined> {
    const row = await this.ownRow(actor, taskId);
    if (isEnded(row.status))
      throw new TaskError('conflict', `task ${taskId} has ${row.status}; it cannot be resumed`);
    if (row.status === 'suspended') await this.checkRunningQuota(row, 'resume this one');
    return this.askResume(actor, taskId, wait);
  }

  /** The resume update itself (the workflow's validator refuses a task that is not suspended). */
  private async askResume(
    actor: Actor,
    taskId: string,
    wait: 'accepted' | 'completed',
  ): Promise<TaskState | undefined> {
    const handle = this.temporal.workflow.getHandle(taskId);
    try {
      if (wait === 'accepted') {
        await handle.startUpdate(resumeUpdate, {
          args: [{ by: actor.userId }],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
        });
        return undefined;
      }
      return await handle.executeUpdate(resumeUpdate, { args: [{ by: actor.userId }] });
    } catch (err) {
      throw this.mapError(err, taskId);
    }
  }

  /** Pushes the task's branch and opens (or updates) its pull request; resumes it first if suspended. */
  async openPullRequest(actor: Actor, taskId: string): Promise<PullRequestResult> {
    const row = await this.ownRow(actor, taskId);
    if (!row.repoOwner)
      throw new TaskError('invalid', `task ${taskId} was spawned without a repository (spawn with repo)`);
    if (isEnded(row.status))
      throw new TaskError('conflict', `task ${taskId} has ${row.status}; its VM is gone`);
    if (row.status === 'suspended') await this.checkRunningQuota(row, 'resume this one for its pull request');
    try {
      return await this.temporal.workflow
        .getHandle(taskId)
        .executeUpdate(openPullRequestUpdate, { args: [{ by: actor.userId }] });
    } catch (err) {
      throw this.mapError(err, taskId);
    }
  }

  /** The task's working tree against its base: fresh from a running task, else the last one taken. */
  async diff(actor: Actor, taskId: string, o: { fresh?: boolean } = {}): Promise<DiffView> {
    return taskDiff(this.pool, await this.ownRow(actor, taskId), o);
  }

  async stop(actor: Actor, taskId: string, reason = 'stopped by its owner'): Promise<void> {
    const row = await this.ownRow(actor, taskId);
    if (isEnded(row.status)) throw new TaskError('conflict', `task ${taskId} has already ${row.status}`);
    try {
      await this.temporal.workflow.getHandle(taskId).signal(terminateSignal, { reason, by: actor.userId });
    } catch (err) {
      throw this.mapError(err, taskId);
    }
    // A stopped task's links act no more (its output stays readable through the service).
    await revokeLinks(this.pool, taskId);
  }

  /**
   * Queues terminal input. Input to a suspended task (or one being suspended) resumes it; the
   * input waits in PostgreSQL and reaches the agent once the VM is back.
   */
  async input(
    actor: Actor,
    taskId: string,
    data: Buffer,
    knownStatus?: TaskStatus,
    origin?: InputOrigin,
  ): Promise<void> {
    let row = knownStatus ? undefined : await this.ownRow(actor, taskId);
    const status = knownStatus ?? row!.status;
    if (isEnded(status) || isEnding(status))
      throw new TaskError('conflict', `task ${taskId} has ${status}; it takes no more input`);
    if (status === 'suspended') {
      // Input that would resume the task over its owner's limit is refused, not kept for later.
      row ??= await this.ownRow(actor, taskId);
      await this.checkRunningQuota(row, 'resume this one for your input');
    }
    if ((await pendingInputBytes(this.pool, taskId)) + data.length > LIMITS.taskInputMaxBytes)
      throw new TaskError(
        'quota',
        `task ${taskId} already has ${LIMITS.taskInputMaxBytes / 2 ** 20} MiB of input waiting that its VM has not read; wait, or stop the task`,
      );
    const now = await enqueueInput(this.pool, taskId, { kind: 'stdin', data }, origin);
    if (now === undefined) throw new TaskError('not_found', `no task ${taskId}`);
    if (isEnded(now)) throw new TaskError('conflict', `task ${taskId} has ${now}; it takes no more input`);
    if (now === 'suspended' || now === 'suspending')
      await this.askResume(actor, taskId, 'accepted').catch(() => {});
  }

  /**
   * A follow-up message from the owner (the Discord thread, the task page). In a headless
   * conversation it becomes the next turn of the same Claude Code session: queued behind the turn
   * that runs, delivered by the host's pump (a suspended task is resumed first). Elsewhere it is
   * typed into the terminal, as a line.
   */
  async followUp(actor: Actor, taskId: string, text: string): Promise<FollowUp> {
    const row = await this.ownRow(actor, taskId);
    if (isEnded(row.status) || isEnding(row.status))
      throw new TaskError('conflict', `task ${taskId} has ${row.status}; it takes no more messages`);
    // "Open a pull request", and nothing else: Lia does it (issue 20).
    if (row.repoOwner && isBarePullRequestAsk(text))
      return { kind: 'pull-request', pullRequest: await this.openPullRequest(actor, taskId) };
    if (row.runtime === 'claude-headless') {
      if (row.status === 'suspended') await this.checkRunningQuota(row, 'resume this one for your message');
      // A request that also asks for the pull request gets one when its turn ends.
      const openPr = !!row.repoOwner && asksForPullRequest(text);
      const r = await enqueueTurn(
        this.pool,
        taskId,
        text,
        actor.userId,
        CONVERSATION_LIMITS.waitingTurns,
        openPr,
      );
      if ('n' in r) {
        if (row.status === 'suspended' || row.status === 'suspending')
          await this.askResume(actor, taskId, 'accepted').catch(() => {});
        return {
          kind: 'turn',
          n: r.n,
          ahead: r.ahead,
          status: row.status,
          ...(openPr ? { pullRequestAfter: true } : {}),
        };
      }
      if (r.refused === 'too-many')
        throw new TaskError(
          'quota',
          `${r.waiting} messages already wait for the agent in task ${taskId}; wait until it has taken some`,
        );
      // A headless task from before conversations: its terminal is a shell, the message is typed.
    }
    await this.input(actor, taskId, Buffer.from(`${text}\r`, 'utf8'), row.status);
    return { kind: 'typed', status: row.status };
  }

  /**
   * The owner's (or an admin's) answer to a question the agent asked before a tool use. The
   * workflow decides (its update refuses a question that is not waiting); the answer reaches the
   * agent through the host, at once or — for a suspended task, which this resumes — once the VM
   * is back.
   */
  async answer(actor: Actor, taskId: string, questionId: string, choice: Choice): Promise<DecisionView> {
    const row = await this.ownRow(actor, taskId);
    if (isEnded(row.status) || isEnding(row.status))
      throw new TaskError('conflict', `task ${taskId} has ${row.status}; its questions are closed`);
    const known = (await questionsOf(this.pool, taskId)).find((q) => q.id === questionId);
    if (known?.decision)
      throw new TaskError(
        'conflict',
        `question ${questionId} is already settled: ${describeDecision(known.decision, known.decision.by ? `user ${known.decision.by}` : '')}`,
      );
    if (row.status === 'suspended') await this.checkRunningQuota(row, 'resume this one for your answer');
    try {
      return await this.temporal.workflow
        .getHandle(taskId)
        .executeUpdate(answerUpdate, { args: [{ questionId, choice, by: actor.userId }] });
    } catch (err) {
      const e = this.mapError(err, taskId);
      if (!known && /no question/.test(e.message)) throw new TaskError('not_found', e.message);
      throw e;
    }
  }

  /**
   * For the bot's thread relay (no caller: it posts to the thread of the task, which the owner
   * opened): every question with its decision, and the turns done after `afterTurn`.
   */
  async peekConversation(
    taskId: string,
    afterTurn: number,
  ): Promise<{ questions: Awaited<ReturnType<typeof questionsOf>>; doneTurns: TurnView[] }> {
    const [questions, doneTurns] = await Promise.all([
      questionsOf(this.pool, taskId),
      doneTurnsAfter(this.pool, taskId, afterTurn),
    ]);
    return { questions, doneTurns };
  }

  /** The task's questions, decisions, always-allowed tools and turns. */
  async conversation(actor: Actor, taskId: string): Promise<ConversationView> {
    const row = await this.ownRow(actor, taskId);
    const [questions, settled, turns] = await Promise.all([
      isEnded(row.status) ? [] : openQuestions(this.pool, taskId),
      decisions(this.pool, taskId, 100),
      turnsOf(this.pool, taskId, 50),
    ]);
    const allowedTools = [...new Set(settled.filter((d) => d.how === 'always').map((d) => d.tool))];
    return {
      taskId,
      permissionMode: row.permissionMode,
      turnsEnabled: row.runtime === 'claude-headless' && turns.length > 0,
      questions,
      decisions: settled,
      allowedTools,
      turns,
    };
  }

  /**
   * Refuses to bring a task back to running past its owner's limit of running tasks. Checked
   * when the resume is asked for, so two resumes at the same instant can both pass.
   */
  private async checkRunningQuota(row: TaskRow, doing: string): Promise<void> {
    const limit = this.config.quota.running_tasks_per_user;
    if ((await countRunning(this.pool, row.owner, row.id)) >= limit) throw runningQuotaError(limit, doing);
  }

  async resize(taskId: string, cols: number, rows: number): Promise<void> {
    const now = await enqueueInput(this.pool, taskId, { kind: 'resize', cols, rows });
    if (now && isEnded(now))
      throw new TaskError('conflict', `task ${taskId} has ${now}; it takes no more input`);
  }

  async query(taskId: string): Promise<TaskState> {
    return this.temporal.workflow.getHandle(taskId).query(stateQuery);
  }

  /**
   * A new link to the task's page for its owner. It revokes every link given before it (a link
   * that leaked is dead once its owner asks for a new one), so links are made only where a
   * person asked for one: a spawn, /status, a resume's answer — never in lists.
   */
  async link(userId: string, taskId: string): Promise<string> {
    const issuedAt = await revokeLinks(this.pool, taskId);
    return taskUrl(publicUrl(this.config), taskId, await this.links.sign(userId, taskId, { issuedAt }));
  }

  /** Whether a link issued at `issuedAt` still opens the task (no newer link, no stop since). */
  async linkCurrent(taskId: string, issuedAt: number): Promise<boolean> {
    return issuedAt >= (await linksNotBefore(this.pool, taskId));
  }

  /** The task, if the actor may act on it; unknown and foreign tasks are refused, told apart. */
  async authorized(actor: Actor, taskId: string): Promise<TaskView> {
    return toView(await this.ownRow(actor, taskId));
  }

  private async ownRow(actor: Actor, taskId: string): Promise<TaskRow> {
    const row = await getTask(this.pool, taskId);
    if (!row) throw new TaskError('not_found', `no task ${taskId}`);
    if (row.owner !== actor.userId && !actor.admin) {
      throw new TaskError('forbidden', `task ${taskId} belongs to another user`);
    }
    return row;
  }

  private mapError(err: unknown, taskId: string): TaskError {
    if (err instanceof WorkflowNotFoundError)
      return new TaskError('conflict', `task ${taskId} is no longer running`);
    if (err instanceof WorkflowUpdateFailedError) {
      return new TaskError('conflict', (err.cause as Error | undefined)?.message ?? err.message);
    }
    const msg = err instanceof Error ? err.message : String(err);
    if (/validat|rejected/i.test(msg)) return new TaskError('conflict', msg);
    if (/completed|closed/i.test(msg))
      return new TaskError('conflict', `task ${taskId} is no longer running`);
    return new TaskError('unavailable', msg);
  }
}
