// The gRPC listener: Authorization/Check and grpc.health.v1.Health.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { App } from '../runtime/app.ts';
import { AUTHZ_SERVICE, authorizationService } from './protos.ts';
import { toAuthzRequest, toCheckResponse, type CheckRequestMsg } from './check-adapter.ts';

export interface GrpcListener {
  server: grpc.Server;
  port: number;
  health: HealthImplementation;
  setServing(serving: boolean): void;
}

export function grpcCredentials(tls: { cert_file: string; key_file: string; client_ca_file?: string } | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const ca = tls.client_ca_file ? readFileSync(tls.client_ca_file) : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readFileSync(tls.cert_file), private_key: readFileSync(tls.key_file) }],
    ca !== null,
  );
}

export async function startGrpcServer(app: App, address: string, credentials: grpc.ServerCredentials, maxReceive = 4 * 1024 * 1024): Promise<GrpcListener> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': maxReceive });
  server.addService(authorizationService(), {
    Check(call: grpc.ServerUnaryCall<CheckRequestMsg, unknown>, callback: grpc.sendUnaryData<unknown>) {
      app.check(toAuthzRequest(call.request)).then(
        (d) => callback(null, toCheckResponse(d)),
        // app.check never rejects; if it somehow did, fail the RPC (Envoy: status_on_error).
        (e) => callback({ code: grpc.status.INTERNAL, details: 'internal error' } as grpc.ServiceError, null),
      );
    },
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [AUTHZ_SERVICE]: 'NOT_SERVING' });
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) => (err ? reject(new Error(`cannot listen on ${address} (server.grpc.address): ${err.message}`)) : resolve(p))),
  );
  const setServing = (serving: boolean) => {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', s);
    health.setStatus(AUTHZ_SERVICE, s);
  };
  return { server, port, health, setServing };
}
