/**
 * The coding loop on the task page (issue 20): a task spawned with a repository gets an
 * **Open pull request** button (commit, push lia/<task>, open or update the PR; a suspended task
 * is resumed first) and, once there is one, the link to its pull request.
 */
import { useState } from 'react';
import { diffStatText } from '../../common/diff';
import { api, type TaskView } from './api';

export function PullRequest({
  view,
  status,
  say,
}: {
  view: TaskView | null | undefined;
  status: string | null;
  say(message: string | null): void;
}) {
  const [busy, setBusy] = useState(false);
  const [opened, setOpened] = useState<{ url: string; number: number } | null>(null);
  if (!view?.repo) return null;
  const pr = opened ?? view.pullRequest;
  const ended = status === 'terminated' || status === 'failed';
  const open = async () => {
    setBusy(true);
    say(`Pushing ${view.repo!.branch} and opening the pull request…`);
    try {
      const r = await api<{ url: string; number: number; created: boolean }>(
        'POST',
        `/tasks/${view.id}/pull-request`,
      );
      setOpened(r);
      say(`Pull request #${r.number} ${r.created ? 'opened' : 'updated'}.`);
    } catch (e) {
      say((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {pr && (
        <a
          href={pr.url}
          target="_blank"
          rel="noreferrer"
          data-testid="pull-request"
          title={view.pullRequestLast?.stat ? diffStatText(view.pullRequestLast.stat) : undefined}
        >
          PR #{pr.number}
        </a>
      )}
      {view.pullRequestLast?.kind === 'failed' && (
        <span className="muted" data-testid="pull-request-failed" title={view.pullRequestLast.error}>
          last push failed
        </span>
      )}
      <button
        type="button"
        disabled={busy || ended}
        onClick={open}
        title={`${view.repo.owner}/${view.repo.name}`}
      >
        Open pull request
      </button>
    </>
  );
}
