/** A follow-up that asks for the pull request (issue 20): alone, Lia opens it; within a request, after that turn. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asksForPullRequest, isBarePullRequestAsk } from '../../common/pull-request.js';

test('the ask alone is taken by Lia (the agent is not asked)', () => {
  for (const s of [
    'open a PR',
    'Open a pull request',
    'please create the pull request!',
    'make a PR please',
    '/pr',
    '  open pr. ',
    'update the PR',
    'push the pull-request now',
  ])
    assert.ok(isBarePullRequestAsk(s), s);
});

test('a request that also asks for one is a turn, with the pull request after it', () => {
  for (const s of [
    'fix the failing test, then open a PR',
    'Refactor it and create a pull request for review',
  ])
    assert.ok(asksForPullRequest(s) && !isBarePullRequestAsk(s), s);
});

test('talk about pull requests, or a request without one, is neither', () => {
  for (const s of [
    'what does this PR template do?',
    'do not open anything yet',
    'read PR.md and summarise it',
    'open the file src/pr.ts',
    'the pull request from yesterday broke the build',
    'PRINT the report',
    `open a PR ${'x'.repeat(200)}`,
  ]) {
    assert.ok(!isBarePullRequestAsk(s), `bare: ${s}`);
  }
  for (const s of [
    'what does this PR template do?',
    'read PR.md and summarise it',
    'the pull request from yesterday broke the build',
    'open the file src/pr.ts',
  ])
    assert.ok(!asksForPullRequest(s), `within: ${s}`);
});
