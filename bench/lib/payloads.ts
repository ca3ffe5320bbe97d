// Envoy-shaped CheckRequests, serialized exactly as a gRPC client puts them on the wire.
import type * as grpc from '@grpc/grpc-js';
import { AUTHZ_SERVICE, loadAuthzPackageDefinition } from '../../src/envoy/protos.ts';
import { envoyCheckRequest } from '../../test/support/envoy.ts';
import type { CheckResponseMsg } from '../../test/support/envoy.ts';

const check = () => (loadAuthzPackageDefinition()[AUTHZ_SERVICE] as grpc.ServiceDefinition).Check;

export interface RequestSpec {
  method?: string;
  path: string;
  /** Credential and other client headers. */
  headers?: Record<string, string>;
  sourceIp?: string;
}

/**
 * The headers a typical client request carries through an Envoy front proxy, so the decoded
 * message is the size Envoy really sends (about 0.5-1.5 kB), not a toy.
 */
function envoyHeaders(spec: RequestSpec, n: number): Record<string, string> {
  return {
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
    accept: 'application/json',
    'accept-encoding': 'gzip, deflate, br',
    'accept-language': 'en-GB,en;q=0.9',
    'x-forwarded-proto': 'https',
    'x-forwarded-for': '203.0.113.7',
    'x-envoy-external-address': '203.0.113.7',
    'x-request-id': `0f4c2a1e-7b3d-4f9a-9c2e-${String(n).padStart(12, '0')}`,
    ...(spec.headers ?? {}),
  };
}

/** The CheckRequest object (proto-loader field names) for one request. */
export function checkRequestObject(spec: RequestSpec, n = 0) {
  return envoyCheckRequest({
    method: spec.method ?? 'GET',
    path: spec.path,
    host: 'api.example.com',
    headers: envoyHeaders(spec, n),
    sourceIp: spec.sourceIp ?? '10.1.2.3',
  });
}

export function serializeCheckRequest(obj: unknown): Buffer {
  return check().requestSerialize(obj);
}

export function deserializeCheckResponse(buf: Buffer): CheckResponseMsg {
  return check().responseDeserialize(buf) as CheckResponseMsg;
}

/** gRPC length-prefixed message: 1 byte "compressed" flag (0), 4 bytes big-endian length, message. */
export function grpcFrame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

export function unframe(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`gRPC response body too short (${body.length} bytes)`);
  const len = body.readUInt32BE(1);
  return body.subarray(5, 5 + len);
}

/** Framed, ready for h2load -d or a raw HTTP/2 client. */
export function framedCheckRequest(spec: RequestSpec, n = 0): Buffer {
  return grpcFrame(serializeCheckRequest(checkRequestObject(spec, n)));
}

export const CHECK_PATH = `/${AUTHZ_SERVICE}/Check`;
