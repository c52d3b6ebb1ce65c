/**
 * The token budgets, as the egress proxy's gate (vm/egress/proxy.ts `BudgetGate`): before each
 * model call of a task, its tokens so far against LIA__QUOTA__TOKENS_PER_TASK and its owner's of
 * the day (UTC) against LIA__QUOTA__TOKENS_PER_USER_PER_DAY, from what the proxy recorded
 * (common/db/tasks.ts). An answer is kept a few seconds, so a busy agent costs the database one
 * query per task every few seconds at most; a budget can therefore be overrun by what the task's
 * calls in flight and in those seconds use. While a budget refuses, the task's row carries the
 * reason (`budget_notice`), which its status shows; it is cleared when calls pass again (the
 * next UTC day, or a raised budget).
 *
 * A database that does not answer is no reason to stop an agent: the last answer stands, or the
 * call passes, and the next call asks again.
 */
import type { Pool } from '../common/db/pool.js';
import { budgetUsage, setBudgetNotice } from '../common/db/tasks.js';
import type { Logger } from '../common/logger.js';
import type { BudgetAnswer, BudgetGate } from '../vm/egress/proxy.js';

export interface BudgetLimits {
  /** 0: no limit. */
  tokensPerTask: number;
  /** 0: no limit. */
  tokensPerUserPerDay: number;
}

const OK: BudgetAnswer = { ok: true };
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** The refusal for these figures, or undefined when the call may go. */
export function budgetVerdict(
  limits: BudgetLimits,
  used: { taskTokens: number; ownerTodayTokens: number },
  now = new Date(),
): string | undefined {
  if (limits.tokensPerTask > 0 && used.taskTokens >= limits.tokensPerTask) {
    return (
      `Lia: this task has used its model budget (${fmt(used.taskTokens)} of ${fmt(limits.tokensPerTask)} tokens, ` +
      'LIA__QUOTA__TOKENS_PER_TASK); its model calls are refused. Start a new task, or ask an operator to raise the budget.'
    );
  }
  if (limits.tokensPerUserPerDay > 0 && used.ownerTodayTokens >= limits.tokensPerUserPerDay) {
    const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    const minutes = Math.ceil((midnight - now.getTime()) / 60_000);
    return (
      `Lia: your tasks have used today's model budget (${fmt(used.ownerTodayTokens)} of ` +
      `${fmt(limits.tokensPerUserPerDay)} tokens, LIA__QUOTA__TOKENS_PER_USER_PER_DAY); model calls are refused ` +
      `until midnight UTC (in ${Math.floor(minutes / 60)} h ${minutes % 60} min).`
    );
  }
  return undefined;
}

export function createBudgetGate(o: {
  pool: Pool;
  limits: BudgetLimits;
  logger: Pick<Logger, 'warn'>;
  /** How long an answer is kept (default 3 s). */
  ttlMs?: number;
}): BudgetGate {
  const ttl = o.ttlMs ?? 3000;
  const cache = new Map<string, { at: number; answer: BudgetAnswer }>();
  const asking = new Map<string, Promise<BudgetAnswer>>();

  async function ask(taskId: string): Promise<BudgetAnswer> {
    const last = cache.get(taskId);
    let answer: BudgetAnswer;
    try {
      const used = await budgetUsage(o.pool, taskId);
      if (!used) {
        answer = {
          ok: false,
          message: `Lia: task ${taskId} has no record on this host; model calls are refused`,
        };
      } else {
        const refusal = budgetVerdict(o.limits, used);
        answer = refusal ? { ok: false, message: refusal } : OK;
        if ((refusal ?? null) !== used.notice)
          setBudgetNotice(o.pool, taskId, refusal ?? null).catch((err) =>
            o.logger.warn({ taskId, err: err.message }, 'budget: could not record the notice'),
          );
      }
    } catch (err) {
      o.logger.warn(
        { taskId, err: (err as Error).message },
        'budget: usage unreadable; the last answer stands',
      );
      return last?.answer ?? OK;
    }
    if (cache.size > 10_000) {
      const stale = Date.now() - ttl;
      for (const [id, e] of cache) if (e.at < stale) cache.delete(id);
    }
    cache.set(taskId, { at: Date.now(), answer });
    return answer;
  }

  return {
    check(taskId: string): Promise<BudgetAnswer> {
      if (o.limits.tokensPerTask <= 0 && o.limits.tokensPerUserPerDay <= 0) return Promise.resolve(OK);
      const hit = cache.get(taskId);
      if (hit && Date.now() - hit.at < ttl) return Promise.resolve(hit.answer);
      let p = asking.get(taskId);
      if (!p) {
        p = ask(taskId).finally(() => asking.delete(taskId));
        asking.set(taskId, p);
      }
      return p;
    },
  };
}
