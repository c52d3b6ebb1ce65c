/**
 * The conversation's pure parts: which tool uses ask in which mode, the preview of a tool use
 * (guest input: escapes out, trimmed), the buttons' custom ids (parsed strictly, within
 * Discord's 100 characters), the agent door's line reader (bounded), the session id, and the
 * model stand-in's script.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { claudeSessionId } from '../../common/claude-session.js';
import { parseQuestionButton, questionButtonId } from '../../common/conversation.js';
import { needsAnswer } from '../../common/permission-policy.js';
import { previewToolUse } from '../../common/tool-preview.js';
import { LineReader, MAX_LINE_BYTES, shrinkToFit } from '../../vm/guest/agent-protocol.js';
import { scriptedReply } from '../standins/model/tool-script.js';

test('modes: ask asks for everything but reading; edits lets edits through; auto asks nothing', () => {
  assert.equal(needsAnswer('ask', 'Bash'), true);
  assert.equal(needsAnswer('ask', 'Edit'), true);
  assert.equal(needsAnswer('ask', 'Read'), false);
  assert.equal(needsAnswer('ask', 'mcp__x__y'), true, 'tools not named ask');
  assert.equal(needsAnswer('edits', 'Edit'), false);
  assert.equal(needsAnswer('edits', 'Write'), false);
  assert.equal(needsAnswer('edits', 'Bash'), true);
  assert.equal(needsAnswer('auto', 'Bash'), false);
});

test('a preview: the command; a diff for an edit; escapes and control characters stripped; trimmed', () => {
  const bash = previewToolUse('Bash', {
    command: 'rm -rf /tmp/x\x1b]0;pwned\x07\x1b[2J',
    description: 'Clean up',
  });
  assert.equal(bash.summary, 'rm -rf /tmp/x');
  assert.equal(bash.detail, 'Clean up');
  const edit = previewToolUse('Edit', { file_path: '/w/a.ts', old_string: 'a\nb', new_string: 'c' });
  assert.equal(edit.summary, '/w/a.ts');
  assert.equal(edit.detail, '- a\n- b\n+ c');
  const long = previewToolUse('Bash', { command: 'x'.repeat(5000) }, { summaryChars: 100, detailChars: 100 });
  assert.equal([...long.summary].length, 100);
  assert.match(long.summary, /more characters\)$/);
  assert.equal(previewToolUse('Bash', {}).summary, '(no input)');
});

test('button ids: within 100 characters, parsed back strictly', () => {
  const id = questionButtonId('t_abcdefghij', `q_${'a'.repeat(32)}`, 'always');
  assert.ok(id.length <= 100, `${id.length}`);
  assert.deepEqual(parseQuestionButton(id), {
    taskId: 't_abcdefghij',
    questionId: `q_${'a'.repeat(32)}`,
    choice: 'always',
  });
  for (const bad of [
    'lia:q:t_abcdefghij:q_aaaaaaaa:maybe',
    'lia:q:t_ABCDEFGHIJ:q_aaaaaaaa:once',
    'lia:q:t_abcdefghij:q_aaaaaaaa:once:extra',
    'lia:resume:t_abcdefghij',
  ])
    assert.equal(parseQuestionButton(bad), undefined, bad);
});

test("the agent door's lines: split across chunks, bounded", () => {
  const r = new LineReader();
  assert.deepEqual(r.push(Buffer.from('{"type":"ne')), []);
  assert.deepEqual(r.push(Buffer.from('xt"}\n{"type":"watch"}\n')), [{ type: 'next' }, { type: 'watch' }]);
  const big = new LineReader();
  assert.throws(() => big.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61)), /longer than/);
  const shrunk = shrinkToFit({ content: 'y'.repeat(1_000_000) }, 10_000);
  assert.ok(Buffer.byteLength(JSON.stringify(shrunk)) <= 10_000);
});

test('the session id: a UUID of version 4 shape, the same for a task every time', () => {
  const a = claudeSessionId('t_abcdefghij');
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(claudeSessionId('t_abcdefghij'), a);
  assert.notEqual(claudeSessionId('t_abcdefghik'), a);
});

test('the model stand-in asks for the tools the conversation names, then says what became of them', () => {
  const system = 'You are Claude Code.\nWorking directory: /work\n';
  const user = { role: 'user', content: [{ type: 'text', text: 'Go. [[Bash {"command":"ls $CWD"}]]' }] };
  const first = scriptedReply([user], system);
  assert.equal(first.kind, 'tool_call');
  const use = first.blocks[1] as { type: 'tool_use'; id: string; name: string; input: { command: string } };
  assert.equal(use.name, 'Bash');
  assert.equal(use.input.command, 'ls /work');
  const denied = scriptedReply(
    [
      user,
      { role: 'assistant', content: first.blocks as never },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: use.id, is_error: true, content: 'The owner denied it.' },
        ],
      },
    ],
    system,
  );
  assert.equal(denied.kind, 'final');
  assert.match(
    (denied.blocks[0] as { text: string }).text,
    /could not run Bash ls \/work: it was refused \(The owner denied it\.\)/,
  );
});
