/** The egress proxy's pure rules: target parsing, the model routes, the headers sent upstream. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostPort } from '../../common/host-port.js';
import { modelRequestHeaders, modelRoute, upstreamAcceptEncoding } from '../../vm/egress/model-api.js';

test('host:port targets: names and IPv4 with a port from 1 to 65535, nothing else', () => {
  assert.deepEqual(parseHostPort('Registry.NPMjs.org.:443'), { host: 'registry.npmjs.org', port: 443 });
  assert.deepEqual(parseHostPort('10.0.0.1:65535'), { host: '10.0.0.1', port: 65535 });
  assert.deepEqual(parseHostPort('github.com', 443), { host: 'github.com', port: 443 });
  for (const bad of [
    'github.com',
    'github.com:',
    'github.com:abc',
    'github.com:0',
    'github.com:65536',
    'github.com:99999',
    'github.com:-1',
    'github.com:+1',
    'github.com: 443',
    'github.com:0x1bb',
    'github.com:443:1',
    '[::1]:443',
    ':443',
    '-github.com:443',
    'git_hub.com:443',
    'git%68ub.com:443',
    'user@github.com:443',
    '2130706433:443',
    '0x7f.1:443',
    '256.1.1.1:443',
    `${'a'.repeat(64)}.com:443`,
    `${'a.'.repeat(130)}com:443`,
  ])
    assert.equal(parseHostPort(bad), undefined, bad);
});

test('model routes: what Claude Code calls, as sent; nothing else', () => {
  const fwd = (m: string, u: string) => {
    const d = modelRoute(m, u);
    return d.kind === 'forward' ? d.pathAndQuery : d.kind;
  };
  assert.equal(fwd('POST', '/v1/messages?beta=true'), '/v1/messages?beta=true');
  assert.equal(fwd('POST', '/v1/messages'), '/v1/messages');
  assert.equal(fwd('post', '/v1/messages/count_tokens?beta=true'), '/v1/messages/count_tokens?beta=true');
  assert.equal(fwd('HEAD', '/api/hello'), 'hello');
  for (const [m, u] of [
    ['GET', '/v1/messages'],
    ['POST', '/v1/messages?beta=true&x=1'],
    ['POST', '/v1/messages?beta=maybe'],
    ['POST', '/v1/messages/batches'],
    ['POST', '/v1/messages/'],
    ['POST', '/v1/Messages'],
    ['POST', '/v1/messages/%2e%2e/files'],
    ['POST', '/v1/files'],
    ['GET', '/v1/models'],
    ['GET', '/api/hello'],
  ])
    assert.equal(fwd(m!, u!), 'refused', `${m} ${u}`);
});

test('accept-encoding upstream: what the guest accepts that the meter reads, else identity', () => {
  assert.equal(upstreamAcceptEncoding('gzip, deflate, br, zstd'), 'gzip, deflate, br');
  assert.equal(upstreamAcceptEncoding('zstd'), 'identity');
  assert.equal(upstreamAcceptEncoding(undefined), 'identity');
  assert.equal(upstreamAcceptEncoding('br;q=1.0, gzip;q=0'), 'br');
  assert.equal(upstreamAcceptEncoding('*'), 'gzip, deflate, br');
  assert.equal(upstreamAcceptEncoding('identity'), 'identity');
});

test('headers to the model API: the host key only, no guest credentials, no workspace-file betas', () => {
  const h = modelRequestHeaders(
    {
      'x-api-key': 'guest',
      authorization: 'Bearer guest',
      cookie: 'a=b',
      'proxy-authorization': 'x',
      'anthropic-beta': 'claude-code-20250219,files-api-2025-04-14, interleaved-thinking-2025-05-14',
      'anthropic-version': '2023-06-01',
      'accept-encoding': 'gzip, deflate, br, zstd',
      connection: 'keep-alive',
      host: 'proxy',
    },
    'sk-host',
    'api.anthropic.com',
  );
  assert.deepEqual(h, {
    'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14',
    'anthropic-version': '2023-06-01',
    host: 'api.anthropic.com',
    'x-api-key': 'sk-host',
    'accept-encoding': 'gzip, deflate, br',
  });
});
