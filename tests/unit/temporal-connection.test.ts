/** Every process connects to Temporal the same way: TLS and API-key settings read at start, errors that name the variable. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { temporalConnectionOptions } from '../../workers/temporal-connection.js';
import { testConfig } from '../helpers/env.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-tls-'));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

test('no TLS setting: a plain connection', () => {
  assert.deepEqual(temporalConnectionOptions(testConfig({}), 'h:7233'), { address: 'h:7233' });
});

test('mTLS: the client certificate, its key and the CA are read from their files', () => {
  const cfg = testConfig({
    TEMPORAL__TLS_CERT_FILE: file('c.pem', 'CERT'),
    TEMPORAL__TLS_KEY_FILE: file('k.pem', 'KEY'),
    TEMPORAL__TLS_CA_FILE: file('ca.pem', 'CA'),
    TEMPORAL__TLS_SERVER_NAME: 'temporal.internal',
  });
  const o = temporalConnectionOptions(cfg, 'h:7233');
  assert.equal(o.tls?.clientCertPair?.crt.toString(), 'CERT');
  assert.equal(o.tls?.clientCertPair?.key.toString(), 'KEY');
  assert.equal(o.tls?.serverRootCACertificate?.toString(), 'CA');
  assert.equal(o.tls?.serverNameOverride, 'temporal.internal');
  assert.equal(o.apiKey, undefined);
});

test('an API key (Temporal Cloud) turns TLS on', () => {
  const o = temporalConnectionOptions(
    testConfig({ TEMPORAL__API_KEY: 'secret-key-for-cloud' }),
    'ns.tmprl.cloud:7233',
  );
  assert.deepEqual(o.tls, {});
  assert.equal(o.apiKey, 'secret-key-for-cloud');
});

test('a certificate without its key, or a file that cannot be read, is refused naming the variable', () => {
  assert.throws(
    () => temporalConnectionOptions(testConfig({ TEMPORAL__TLS_CERT_FILE: file('c2.pem', 'C') }), 'h:1'),
    /TLS_CERT_FILE and LIA__TEMPORAL__TLS_KEY_FILE go together/,
  );
  assert.throws(
    () =>
      temporalConnectionOptions(testConfig({ TEMPORAL__TLS_CA_FILE: path.join(dir, 'missing.pem') }), 'h:1'),
    /LIA__TEMPORAL__TLS_CA_FILE=.*missing\.pem: cannot read it \(ENOENT\)/,
  );
});
