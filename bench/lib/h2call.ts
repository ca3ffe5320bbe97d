// One gRPC Check over raw HTTP/2 with exactly the bytes the load generators send, so the
// pre-flight check verifies the very payload that is measured.
import * as http2 from 'node:http2';
import { CHECK_PATH, deserializeCheckResponse, unframe } from './payloads.ts';
import type { CheckResponseMsg } from '../../test/support/envoy.ts';

export const GRPC_HEADERS = {
  ':method': 'POST',
  ':path': CHECK_PATH,
  'content-type': 'application/grpc',
  te: 'trailers',
};

export interface CallResult {
  grpcStatus: number;
  grpcMessage?: string;
  response?: CheckResponseMsg;
}

export function h2Check(session: http2.ClientHttp2Session, frame: Buffer, timeoutMs = 5000): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const req = session.request(GRPC_HEADERS);
    const chunks: Buffer[] = [];
    let status: number | undefined;
    let message: string | undefined;
    const timer = setTimeout(() => {
      req.close();
      reject(new Error(`Check timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('response', (h) => {
      // Trailers-only responses carry grpc-status in the headers.
      if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) message = String(h['grpc-message']);
    });
    req.on('trailers', (t) => {
      status = Number(t['grpc-status']);
      if (t['grpc-message'] !== undefined) message = decodeURIComponent(String(t['grpc-message']));
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('close', () => {
      clearTimeout(timer);
      const body = Buffer.concat(chunks);
      resolve({
        grpcStatus: status ?? -1,
        grpcMessage: message,
        response: status === 0 && body.length >= 5 ? deserializeCheckResponse(unframe(body)) : undefined,
      });
    });
    req.end(frame);
  });
}

export function connect(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}
