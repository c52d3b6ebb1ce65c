/**
 * The Discord stand-in refuses what Discord refuses, tried with the real discord.js: a late
 * first response, an expired token, the wrong callback type, content past Discord's limits, an
 * unknown route (authorized or not); and it answers like Discord when asked to: a 429 with its
 * headers (discord.js waits it out), thread events, and no presses on someone else's ephemeral
 * message. If the stand-in let these pass, the bot's tests could not catch them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ButtonStyle,
  Client,
  ComponentType,
  DiscordAPIError,
  Events,
  GatewayIntentBits,
  type Interaction,
  MessageFlags,
  Routes,
} from 'discord.js';
import { waitFor } from '../helpers/env.js';
import { DiscordStandIn, FAULTS } from '../standins/discord/standin.js';

const discord = new DiscordStandIn();
const alice = discord.addUser('alice');
const bob = discord.addUser('bob');
let client: Client;
/** What the test's "bot" does with the next interaction. */
let onInteraction: (i: Interaction) => Promise<void> = async () => {};
let lastError: unknown;

before(async () => {
  await discord.start();
  client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: discord.apiUrl, retries: 0 } });
  client.on(Events.InteractionCreate, (i) => {
    onInteraction(i).catch((err) => {
      lastError = err;
    });
  });
  const ready = new Promise((r) => client.once(Events.ClientReady, r));
  await client.login(discord.token);
  await ready;
});
after(async () => {
  await client?.destroy();
  await discord.close();
});

/** Runs `handler` on a /spawn from alice and returns what discord.js threw, if anything. */
async function tryWith(
  handler: (i: Interaction) => Promise<void>,
  send = () => discord.slash(alice, 'spawn', { prompt: 'p' }),
) {
  lastError = undefined;
  let done = false;
  onInteraction = async (i) => {
    try {
      await handler(i);
    } finally {
      done = true;
    }
  };
  const rec = send();
  await waitFor('the handler to finish', () => done, 10_000, 20);
  return { rec, error: lastError as DiscordAPIError | undefined };
}

const codeOf = (e: unknown) => (e instanceof DiscordAPIError ? e.code : `not a Discord error: ${String(e)}`);

describe('the Discord stand-in, against discord.js', () => {
  test('a first response after 3 s is refused with 10062', async () => {
    const { error } = await tryWith(async (i) => {
      await new Promise((r) => setTimeout(r, 3500));
      if (i.isRepliable()) await i.deferReply();
    });
    assert.equal(codeOf(error), 10062);
    assert.match(discord.takeRefusals()[0]!.why, /after \d+ ms/);
  });

  test('an interaction token dies (50027): shortened here from 15 minutes', async () => {
    discord.tokenLifetimeMs = 500;
    try {
      const { error } = await tryWith(async (i) => {
        if (!i.isRepliable()) return;
        await i.deferReply();
        await new Promise((r) => setTimeout(r, 700));
        await i.editReply('too late');
      });
      assert.equal(codeOf(error), 50027);
      assert.equal(discord.takeRefusals()[0]!.status, 401);
    } finally {
      discord.tokenLifetimeMs = 15 * 60_000;
    }
  });

  test('an autocomplete takes choices only: a deferral is refused; 26 choices or 150-character names too', async () => {
    const ac = () => discord.autocomplete(alice, 'status', 'task_id', '');
    const deferred = await tryWith(
      (i) =>
        client.rest
          .post(Routes.interactionCallback(i.id, (i as { token: string }).token), {
            body: { type: 5 },
            auth: false,
          })
          .then(() => {}),
      ac,
    );
    assert.equal(codeOf(deferred.error), 50035);
    const tooMany = await tryWith(async (i) => {
      if (i.isAutocomplete())
        await i.respond(Array.from({ length: 26 }, (_, n) => ({ name: `c${n}`, value: `c${n}` })));
    }, ac);
    assert.equal(codeOf(tooMany.error), 50035);
    const tooLong = await tryWith(async (i) => {
      if (i.isAutocomplete()) await i.respond([{ name: 'n'.repeat(150), value: 'v' }]);
    }, ac);
    assert.equal(codeOf(tooLong.error), 50035);
    assert.equal(discord.takeRefusals().length, 3);
  });

  test("content past Discord's limits is refused: 2,001 characters, a 600-character link button", async () => {
    const long = await tryWith(async (i) => {
      if (!i.isRepliable()) return;
      await i.deferReply({ flags: MessageFlags.Ephemeral });
      await i.editReply('x'.repeat(2001));
    });
    assert.equal(codeOf(long.error), 50035);
    const link = await tryWith(async (i) => {
      if (!i.isRepliable()) return;
      await i.deferReply({ flags: MessageFlags.Ephemeral });
      await i.editReply({
        components: [
          {
            type: ComponentType.ActionRow,
            components: [
              {
                type: ComponentType.Button,
                style: ButtonStyle.Link,
                label: 'open',
                url: `https://example.com/${'a'.repeat(600)}`,
              },
            ],
          },
        ],
      });
    });
    assert.equal(codeOf(link.error), 50035);
    assert.equal(discord.takeRefusals().length, 2);
    // Within the limits, the same passes; deleteReply is a route Discord has.
    const ok = await tryWith(async (i) => {
      if (!i.isRepliable()) return;
      await i.deferReply({ flags: MessageFlags.Ephemeral });
      await i.editReply('x'.repeat(2000));
      await i.deleteReply();
    });
    assert.equal(ok.error, undefined);
    assert.ok(ok.rec.originalDeleted);
    assert.deepEqual(discord.takeRefusals(), []);
  });

  test('a route Discord does not have is refused and recorded, with or without the token', async () => {
    await assert.rejects(client.rest.get('/users/@me/nothing-here' as `/${string}`), (e) => codeOf(e) === 0);
    await assert.rejects(
      client.rest.get('/users/@me/nothing-here' as `/${string}`, { auth: false }),
      (e) => codeOf(e) === 0,
    );
    const refused = discord.takeRefusals();
    assert.deepEqual(
      refused.map((r) => [r.status, r.why]),
      [
        [404, 'a route Discord does not have'],
        [404, 'a route Discord does not have'],
      ],
    );
  });

  test('a 429 comes with Discord headers and body, and discord.js waits it out', async () => {
    const route = new RegExp(`^/channels/${discord.channelId}/messages$`);
    const invalid = discord.invalidRequests;
    discord.inject({ route, fault: FAULTS.rateLimit(1), times: 1 });
    const raw = await fetch(`${discord.apiUrl}/v10/channels/${discord.channelId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bot ${discord.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'raw' }),
    });
    assert.equal(raw.status, 429);
    assert.equal(raw.headers.get('retry-after'), '1');
    assert.equal(raw.headers.get('x-ratelimit-remaining'), '0');
    assert.equal(raw.headers.get('x-ratelimit-scope'), 'user');
    assert.ok(Number(raw.headers.get('x-ratelimit-reset-after')) > 0);
    assert.ok(raw.headers.get('x-ratelimit-bucket'));
    assert.deepEqual(await raw.json(), {
      message: 'You are being rate limited.',
      retry_after: 1,
      global: false,
    });
    await new Promise((r) => setTimeout(r, 1100));

    discord.inject({ route, fault: FAULTS.globalRateLimit(1), times: 1 });
    const channel = await client.channels.fetch(discord.channelId);
    const t0 = Date.now();
    if (!channel?.isSendable()) throw new Error('the channel is not sendable');
    await channel.send('after a 429');
    assert.ok(Date.now() - t0 >= 1000, `sent again after ${Date.now() - t0} ms`);
    assert.deepEqual(discord.takeRefusals(), [], 'the retry came after Retry-After');
    assert.equal(discord.invalidRequests - invalid, 2, 'each 429 counts toward the invalid-request ban');
  });

  test('thread events reach discord.js; a locked thread takes no post; nobody else presses an ephemeral button', async () => {
    const t = discord.addThread(discord.channelId, 'a thread', alice);
    await waitFor('the thread in the cache', () => client.channels.cache.get(t.id));
    const deleted = new Promise((r) => client.once(Events.ThreadDelete, r));
    discord.lockThread(t.id);
    const channel = client.channels.cache.get(t.id);
    if (!channel?.isSendable()) throw new Error('not sendable');
    await assert.rejects(channel.send('locked?'), (e) => codeOf(e) === 160005);
    discord.deleteThread(t.id);
    await deleted;
    assert.equal(discord.takeRefusals().length, 1);

    const { rec } = await tryWith(async (i) => {
      if (!i.isRepliable()) return;
      await i.deferReply({ flags: MessageFlags.Ephemeral });
      await i.editReply({
        content: 'mine',
        components: [
          {
            type: ComponentType.ActionRow,
            components: [
              { type: ComponentType.Button, style: ButtonStyle.Primary, label: 'x', custom_id: 'x' },
            ],
          },
        ],
      });
    });
    assert.throws(() => discord.press(bob, rec.original!, 'x'), /only to its user/);
  });
});
