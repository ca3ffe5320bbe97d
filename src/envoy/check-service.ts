// The Authorization service as grpc-js serves it, with the lean codec: requests decode straight to
// an AuthzRequest and Decisions encode straight to CheckResponse bytes (see docs/performance.md for
// why: proto-loader's object conversion was a measurable share of each Check).
import * as grpc from '@grpc/grpc-js';
import type { AuthzRequest } from '../core/types.ts';
import type { App } from '../runtime/app.ts';
import { decodeCheckRequest } from './check-request-decoder.ts';
import { encodeCheckResponse } from './check-response-encoder.ts';
import { authorizationService } from './protos.ts';

/** Envoy's Authorization service definition (path, names from the protos) with the lean codec. */
export function leanAuthorizationService(): grpc.ServiceDefinition {
  const { Check } = authorizationService();
  return {
    Check: {
      ...Check,
      requestDeserialize: (bytes: Buffer): AuthzRequest => decodeCheckRequest(bytes),
      // grpc-js frames the result with Buffer#copy: hand it a Buffer (protobufjs gives one on Node).
      responseSerialize: (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    },
  };
}

/**
 * `closed()`: the server gave up on its remaining calls (the shutdown grace period is over). A Check
 * decided after that fails with UNAVAILABLE (Envoy: status_on_error) rather than being answered:
 * grpc-js's forceShutdown does not end open sessions while channelz is off (grpc-server.ts).
 */
export function checkHandler(app: App, closed: () => boolean = () => false): grpc.handleUnaryCall<AuthzRequest, Uint8Array> {
  return (call, callback) => {
    app.check(call.request).then(
      (d) =>
        closed()
          ? callback({ code: grpc.status.UNAVAILABLE, details: 'portcullis stopped before this Check was decided' } as grpc.ServiceError, null)
          : callback(null, encodeCheckResponse(d)),
      // app.check never rejects; if it somehow did, fail the RPC (Envoy: status_on_error).
      () => callback({ code: grpc.status.INTERNAL, details: 'internal error' } as grpc.ServiceError, null),
    );
  };
}
