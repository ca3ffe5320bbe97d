// The gRPC listener: Authorization/Check and grpc.health.v1.Health. Check is served here, and only
// here: grpc-js's Authorization service (names and path from Envoy's protos) with the codec of
// codec/ in place of proto-loader's serialization. The request bytes decode straight to an
// AuthzRequest (codec/decoder.ts), App.check decides, and the Decision encodes straight to
// CheckResponse bytes (codec/encoder.ts). test/unit/lean-codec.test.ts holds the codec to the
// proto-loader mapping (test/support/check-oracle.ts) byte for byte.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuthzRequest, Decision } from '../core/types.ts';
import type { App } from '../runtime/app.ts';
import { runCheck, type CheckSpan, type Tracing } from '../telemetry/tracing.ts';
import { decodeCheckRequest } from './codec/decoder.ts';
import { encodeCheckResponse } from './codec/encoder.ts';
import { AUTHZ_SERVICE, authorizationService } from './protos.ts';
import { absoluteTlsFiles, tlsProblem } from '../plumbing/tls-files.ts';
import { ReloadingTlsCredentials, type TlsFiles } from './tls-credentials.ts';

export interface GrpcListener {
  server: grpc.Server;
  port: number;
  health: HealthImplementation;
  setServing(serving: boolean): void;
  /** Ends every Health.Watch stream (after NOT_SERVING was sent), so a graceful shutdown can finish. */
  endWatches(): void;
  /** Gives up on the calls still open (the grace period is over): they fail, none is answered later. */
  forceClose(): void;
}

/**
 * Plaintext (h2c) without `tls`; otherwise TLS, or mTLS with client_ca_file, whose certificate files
 * can be reloaded without a restart (`ReloadingTlsCredentials.reload()`). Relative paths resolve
 * against `dir` (the config file's folder).
 */
export function grpcCredentials(
  tls: TlsFiles | undefined,
  opts: { dir?: string; log?: Logger; registry?: Registry } = {},
): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const files = absoluteTlsFiles(tls, opts.dir);
  try {
    return new ReloadingTlsCredentials(files, opts.log, opts.registry);
  } catch (e) {
    throw new Error(tlsProblem(files, e), { cause: e });
  }
}

/** Envoy's Authorization service definition (path, names from the protos) with the lean codec. */
export function leanAuthorizationService(): grpc.ServiceDefinition {
  const { Check } = authorizationService();
  return {
    Check: {
      ...Check,
      requestDeserialize: (bytes: Buffer): AuthzRequest => decodeCheckRequest(bytes),
      // grpc-js frames the result with Buffer#copy: hand it a Buffer (protobufjs gives one on Node).
      responseSerialize: (bytes: Uint8Array): Buffer =>
        Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    },
  };
}

/**
 * `closed()`: the server gave up on its remaining calls (the shutdown grace period is over). A Check
 * decided after that fails with UNAVAILABLE (Envoy: status_on_error) rather than being answered:
 * grpc-js's forceShutdown does not end open sessions while channelz is off (see startGrpcServer).
 */
export function checkHandler(
  app: App,
  closed: () => boolean = () => false,
): grpc.handleUnaryCall<AuthzRequest, Uint8Array> {
  return (call, callback) => {
    // Tracing off (the default): one property read, then the Check as it always was.
    const tracing = app.tracing;
    if (tracing.enabled) tracedCheck(app, tracing, closed, call, callback);
    else plainCheck(app, closed, call, callback);
  };
}

function plainCheck(
  app: App,
  closed: () => boolean,
  call: grpc.ServerUnaryCall<AuthzRequest, Uint8Array>,
  callback: grpc.sendUnaryData<Uint8Array>,
): void {
  app.check(call.request).then(
    (d) =>
      closed()
        ? callback({ code: grpc.status.UNAVAILABLE, details: 'portcullis stopped before this Check was decided' }, null)
        : callback(null, encodeCheckResponse(d)),
    // app.check never rejects; if it somehow did, fail the RPC (Envoy: status_on_error).
    () => callback({ code: grpc.status.INTERNAL, details: 'internal error' }, null),
  );
}

const decideOn = (a: { app: App; req: AuthzRequest }) => a.app.check(a.req);

/**
 * checkHandler with tracing on: the Check is a SERVER span joined to the caller's trace (Envoy puts
 * its ext_authz span's context in the call metadata; the CheckRequest's headers carry the client's),
 * and what app.check waits for (key fetches, introspection, Redis) nests under it.
 */
function tracedCheck(
  app: App,
  tracing: Tracing,
  closed: () => boolean,
  call: grpc.ServerUnaryCall<AuthzRequest, Uint8Array>,
  callback: grpc.sendUnaryData<Uint8Array>,
): void {
  let span: CheckSpan;
  try {
    span = tracing.startCheckSpan(call.request.headers, call.metadata);
  } catch {
    // Tracing never fails a Check.
    return plainCheck(app, closed, call, callback);
  }
  runCheck(tracing, span, decideOn, { app, req: call.request }).then(
    (d) => {
      const stopped = closed();
      if (stopped)
        callback({ code: grpc.status.UNAVAILABLE, details: 'portcullis stopped before this Check was decided' }, null);
      else callback(null, encodeCheckResponse(d));
      endSpan(span, d, stopped ? 'UNAVAILABLE' : 'OK');
    },
    () => {
      callback({ code: grpc.status.INTERNAL, details: 'internal error' }, null);
      endSpan(span, undefined, 'INTERNAL');
    },
  );
}

/** After the answer is sent; a span that cannot be finished is lost, the Check is not. */
function endSpan(span: CheckSpan, d: Decision | undefined, status: 'OK' | 'UNAVAILABLE' | 'INTERNAL'): void {
  try {
    if (d) span.setDecision(d);
    span.end(status);
  } catch {
    // Nothing to do: the answer is already on its way.
  }
}

export async function startGrpcServer(
  app: App,
  address: string,
  credentials: grpc.ServerCredentials,
  maxReceive = 4 * 1024 * 1024,
): Promise<GrpcListener> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxReceive,
    // channelz (grpc-js's introspection service, which Portcullis does not expose) tracks every
    // call with timestamps and closures, work on every Check for nothing. grpc-js only
    // tracks sessions for forceShutdown() with channelz on, so forceClose() below also makes a Check
    // decided after it fail instead of answering on a session that stayed open.
    'grpc.enable_channelz': 0,
  });
  let closed = false;
  server.addService(leanAuthorizationService(), { Check: checkHandler(app, () => closed) });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [AUTHZ_SERVICE]: 'NOT_SERVING' });
  // Health.Watch streams never end by themselves, and a graceful shutdown waits for every open
  // call: track them so a drain can close them once they have been told NOT_SERVING.
  const watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  health.addToServer({
    addService: (svc, impl) =>
      server.addService(svc, {
        ...impl,
        watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
          watches.add(call);
          call.on('close', () => watches.delete(call));
          call.on('cancelled', () => watches.delete(call));
          (impl.watch as (c: unknown) => void)(call);
        },
      }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) =>
      err ? reject(new Error(`cannot listen on ${address} (server.grpc.address): ${err.message}`)) : resolve(p),
    ),
  );
  const setServing = (serving: boolean) => {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', s);
    health.setStatus(AUTHZ_SERVICE, s);
  };
  const endWatches = () => {
    for (const w of watches) w.end();
    watches.clear();
  };
  const forceClose = () => {
    closed = true;
    server.forceShutdown();
  };
  return { server, port, health, setServing, endWatches, forceClose };
}
