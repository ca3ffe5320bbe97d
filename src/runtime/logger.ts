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

let isoMs = -1;
let isoField = '';

/**
 * pino's `stdTimeFunctions.isoTime`, formatted once per millisecond. Every deny writes a line, so
 * under a flood of denied Checks many lines share a millisecond and one `toISOString` serves them
 * all.
 */
export function isoTimeField(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoField = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return isoField;
}

export function createLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name: 'portcullis',
      level: process.env.PORTCULLIS_LOG_LEVEL ?? level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: isoTimeField,
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/**
 * Ends the process once every line already logged has been written. The destination writes
 * asynchronously; process.exit() with a write still in flight lets a later line (written
 * synchronously at exit) overtake it, or loses it: a slow terminal showed "stopped" before
 * "draining". Ending the destination waits for the writes in flight, in order.
 */
export async function exitWhenLogged(log: Logger, code: number, timeoutMs = 2000): Promise<never> {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    (NodeJS.EventEmitter & { end?: () => void; destroyed?: boolean }) | undefined;
  if (stream && typeof stream.end === 'function' && !stream.destroyed) {
    await new Promise<void>((resolve) => {
      setTimeout(resolve, timeoutMs).unref();
      stream.once('close', resolve);
      stream.once('error', () => resolve());
      try {
        stream.end!();
      } catch {
        resolve();
      }
    });
  }
  process.exit(code);
}
