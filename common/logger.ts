import pino from 'pino';

/**
 * One logger per process. Secrets are redacted by key wherever they appear in a log object;
 * code never logs terminal input, file contents or tokens in the first place.
 */
export function createLogger(name: string, level = process.env.LIA__LOG__LEVEL ?? 'info'): pino.Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        '*.token',
        '*.apiKey',
        '*.api_key',
        '*.secret',
        '*.password',
        '*.authorization',
        'token',
        'apiKey',
      ],
      censor: '[redacted]',
    },
    base: { pid: process.pid },
  });
}

export type Logger = pino.Logger;
