// A lean OTLP/HTTP trace sink for benchmarks with tracing on: it reads every export request,
// counts requests and bytes, and answers 200 at once, as a healthy collector does. Unlike the test
// receiver (test/support/otlp-receiver.ts) it keeps nothing, so a long run does not grow it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSink {
  /** The OTLP/HTTP traces URL. */
  url: string;
  requests: number;
  bytes: number;
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const state = { requests: 0, bytes: 0 };
  const server: Server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (state.bytes += c.length));
    req.on('end', () => {
      state.requests++;
      // An empty ExportTraceServiceResponse: {} in JSON, zero bytes in protobuf.
      if (String(req.headers['content-type']).startsWith('application/json'))
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/v1/traces`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** The tracing section for a bench config: every Check sampled (ratio 1, whatever the caller asks). */
export function tracingSection(url: string, protocol: string): string {
  return `
tracing:
  enabled: true
  otlp_endpoint: ${url}
  protocol: ${protocol}
  sample_ratio: 1
  parent_based: false
`;
}
