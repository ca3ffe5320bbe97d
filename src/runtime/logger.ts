// pino, with every place a credential could hide redacted. Decision logs never include headers;
// redaction is the second line of defence.
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'authorization',
  'cookie',
  'token',
  'key',
  'api_key',
  'client_secret',
  'secret',
  '*.authorization',
  '*.cookie',
  '*.token',
  '*.api_key',
  '*.client_secret',
  '*.secret',
  'headers["x-api-key"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["x-api-key"]',
];

export function createLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name: 'portcullis',
      level: process.env.PORTCULLIS_LOG_LEVEL ?? level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
