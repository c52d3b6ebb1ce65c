/**
 * How every Lia process connects to Temporal: the address, and TLS (a client certificate for a
 * self-hosted cluster with mTLS, a CA, a server name) or an API key (Temporal Cloud) from the
 * configuration. One place, so the workers, the API and the tools connect the same way.
 */
import fs from 'node:fs';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../common/config.js';

type Tls = {
  clientCertPair?: { crt: Buffer; key: Buffer };
  serverRootCACertificate?: Buffer;
  serverNameOverride?: string;
};

function read(name: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(
      `${name}=${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** The connection options shared by both kinds of Temporal connection. */
export function temporalConnectionOptions(
  config: Config,
  address: string,
): { address: string; tls?: Tls; apiKey?: string } {
  const t = config.temporal;
  if (!!t.tls_cert_file !== !!t.tls_key_file)
    throw new Error(
      'LIA__TEMPORAL__TLS_CERT_FILE and LIA__TEMPORAL__TLS_KEY_FILE go together: set both or neither',
    );
  const tlsWanted = t.tls_cert_file || t.tls_ca_file || t.tls_server_name || t.api_key;
  if (!tlsWanted) return { address };
  const tls: Tls = {};
  if (t.tls_cert_file && t.tls_key_file)
    tls.clientCertPair = {
      crt: read('LIA__TEMPORAL__TLS_CERT_FILE', t.tls_cert_file),
      key: read('LIA__TEMPORAL__TLS_KEY_FILE', t.tls_key_file),
    };
  if (t.tls_ca_file) tls.serverRootCACertificate = read('LIA__TEMPORAL__TLS_CA_FILE', t.tls_ca_file);
  if (t.tls_server_name) tls.serverNameOverride = t.tls_server_name;
  return { address, tls, ...(t.api_key ? { apiKey: t.api_key } : {}) };
}

export function connectWorkerTemporal(config: Config, address: string): Promise<NativeConnection> {
  return NativeConnection.connect(temporalConnectionOptions(config, address));
}

export function connectClientTemporal(config: Config, address: string): Promise<Connection> {
  return Connection.connect(temporalConnectionOptions(config, address));
}
