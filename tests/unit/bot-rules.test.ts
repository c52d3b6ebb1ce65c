/** The bot's rules that need no Discord: who may spawn where, who is an admin, which files and links pass. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DiscordAPIError, HTTPError } from 'discord.js';
import { actorOf, spawnRefusal } from '../../bot/actor.js';
import { checkAttachment, safeFileName } from '../../bot/attachments.js';
import { commands } from '../../bot/commands/index.js';
import { channelGone, clip, transient } from '../../bot/discord-rules.js';
import { checkLinks } from '../../bot/link-check.js';
import { loadConfig } from '../../common/config.js';

const config = (env: Record<string, string> = {}) => loadConfig({ ...env });

test('spawning is closed until a guild or role list is set, or it is opened; never outside a server', () => {
  assert.match(spawnRefusal(config(), 'g1', [])!, /not enabled yet/, 'closed by default');
  const open = config({ LIA__DISCORD__SPAWN_OPEN: 'true' });
  assert.equal(spawnRefusal(open, 'g1', []), undefined, 'open: anyone in any guild');
  assert.match(spawnRefusal(open, null, [])!, /in a server only/, 'not from a DM, even when open');
  const byGuild = config({ LIA__DISCORD__SPAWN_GUILDS: 'g1,g2' });
  assert.equal(spawnRefusal(byGuild, 'g2', []), undefined);
  assert.match(spawnRefusal(byGuild, 'g3', [])!, /not enabled in this server/);
  const byRole = config({ LIA__DISCORD__SPAWN_ROLES: 'r1' });
  assert.equal(spawnRefusal(byRole, 'g1', ['r0', 'r1']), undefined);
  assert.match(spawnRefusal(byRole, 'g1', ['r0'])!, /roles allowed to spawn/);
  assert.throws(() => config({ LIA__DISCORD__SPAWN_OPEN: 'yes' }), /LIA__DISCORD__SPAWN_OPEN/);
});

test('by default one user cannot hold every VM slot of a host', () => {
  const c = config();
  assert.ok(
    c.quota.live_tasks_per_user < c.host.max_vms,
    `${c.quota.live_tasks_per_user} of ${c.host.max_vms}`,
  );
  assert.ok(c.quota.running_tasks_per_user <= c.quota.live_tasks_per_user);
});

test('every command is offered in servers only (no DMs, no user installs)', () => {
  for (const c of commands.values()) {
    const json = c.data.toJSON();
    assert.deepEqual(json.contexts, [0], `/${json.name}`);
    assert.deepEqual(json.integration_types, [0], `/${json.name}`);
  }
});

test('admins: listed users and members of admin roles', () => {
  const c = config({ LIA__API__ADMIN_USERS: 'u9', LIA__DISCORD__ADMIN_ROLES: 'mods' });
  assert.deepEqual(actorOf(c, 'u9', []), { userId: 'u9', admin: true });
  assert.deepEqual(actorOf(c, 'u1', ['mods']), { userId: 'u1', admin: true });
  assert.deepEqual(actorOf(c, 'u1', ['other']), { userId: 'u1', admin: false });
});

test('terminal links: refused when Discord would refuse them, a warning when users cannot open them', () => {
  const token = 'x'.repeat(220);
  const link = (base: string) => `${base}/tasks/t_aaaaaaaaaa#token=${token}`;
  assert.deepEqual(checkLinks(link('https://lia.example.com'), true), { warnings: [] });
  assert.match(
    checkLinks(link('http://127.0.0.1:3000'), false).warnings[0]!,
    /own machine.*LIA__SERVER__PUBLIC_URL is not set|not set.*own machine/,
  );
  assert.match(checkLinks(link('http://localhost:3000'), true).warnings[0]!, /own machine/);
  assert.match(checkLinks(link('http://[::1]:3000'), true).warnings[0]!, /own machine/);
  assert.match(checkLinks(link('http://192.168.1.20:3000'), true).warnings[0]!, /inside this network/);
  assert.match(checkLinks(link('http://lia-box:3000'), true).warnings[0]!, /inside this network/);
  assert.match(checkLinks(link('http://lia.example.com'), true).warnings[0]!, /plain http/);
  assert.match(checkLinks(link(`https://lia.example.com/${'p'.repeat(300)}`), true).fatal!, /at most 512/);
  assert.match(checkLinks(link('ftp://lia.example.com'), true).fatal!, /http and https links only/);
});

test('Discord errors: a gone thread is told apart from a passing failure; text is clipped whole', () => {
  const api = (status: number, code: number) =>
    new DiscordAPIError({ code, message: 'x' }, code, status, 'POST', '/channels/1/messages', {
      body: undefined,
      files: undefined,
    });
  for (const code of [10003, 50001, 50013, 160005, 50083])
    assert.ok(channelGone(api(code === 10003 ? 404 : 403, code)), String(code));
  assert.ok(!channelGone(api(400, 50035)));
  assert.ok(
    transient(new HTTPError(502, 'Bad Gateway', 'POST', '/x', { body: undefined, files: undefined })),
  );
  assert.ok(!transient(api(403, 50013)));
  assert.equal(clip('ab😀', 3), 'ab', 'a surrogate pair is not split');
  assert.equal(clip('abc', 100), 'abc');
});

test('attachments: size and type are checked; names are made safe', () => {
  const a = (name: string, size: number, contentType: string | null) => ({
    name,
    size,
    contentType,
    url: 'x',
  });
  assert.equal(checkAttachment(a('notes.md', 100, 'text/markdown; charset=utf-8')), undefined);
  assert.equal(checkAttachment(a('data.json', 100, 'application/json')), undefined);
  assert.equal(checkAttachment(a('src.tar.gz', 100, 'application/gzip')), undefined);
  assert.match(checkAttachment(a('big.txt', 11 * 1024 * 1024, 'text/plain'))!, /limit is 10 MiB/);
  assert.match(checkAttachment(a('tool.exe', 10, 'application/x-msdownload'))!, /not accepted/);
  assert.match(checkAttachment(a('disk.img', 10, 'application/octet-stream'))!, /not accepted/);
  assert.equal(safeFileName('../../etc/passwd'), 'passwd');
  assert.equal(safeFileName('.bashrc'), 'bashrc');
  assert.equal(safeFileName('my report (v2).pdf'), 'my report _v2_.pdf');
  assert.equal(safeFileName('PROMPT.md'), 'PROMPT.attached.md');
  assert.equal(safeFileName('...'), 'upload');
});
