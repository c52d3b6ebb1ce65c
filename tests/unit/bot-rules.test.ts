/** The bot's rules that need no Discord: who may spawn where, who is an admin, which files pass. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { actorOf, spawnRefusal } from '../../bot/actor.js';
import { checkAttachment, safeFileName } from '../../bot/attachments.js';
import { loadConfig } from '../../common/config.js';

const config = (env: Record<string, string> = {}) => loadConfig({ ...env });

test('the spawn allowlists: guilds and roles, each optional', () => {
  assert.equal(spawnRefusal(config(), 'g1', []), undefined, 'no lists: anyone, anywhere');
  const byGuild = config({ LIA__DISCORD__SPAWN_GUILDS: 'g1,g2' });
  assert.equal(spawnRefusal(byGuild, 'g2', []), undefined);
  assert.match(spawnRefusal(byGuild, 'g3', [])!, /not enabled in this server/);
  assert.match(spawnRefusal(byGuild, null, [])!, /not enabled/);
  const byRole = config({ LIA__DISCORD__SPAWN_ROLES: 'r1' });
  assert.equal(spawnRefusal(byRole, 'g1', ['r0', 'r1']), undefined);
  assert.match(spawnRefusal(byRole, 'g1', ['r0'])!, /roles allowed to spawn/);
});

test('admins: listed users and members of admin roles', () => {
  const c = config({ LIA__API__ADMIN_USERS: 'u9', LIA__DISCORD__ADMIN_ROLES: 'mods' });
  assert.deepEqual(actorOf(c, 'u9', []), { userId: 'u9', admin: true });
  assert.deepEqual(actorOf(c, 'u1', ['mods']), { userId: 'u1', admin: true });
  assert.deepEqual(actorOf(c, 'u1', ['other']), { userId: 'u1', admin: false });
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
