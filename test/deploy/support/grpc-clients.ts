// Real grpc-js clients for the Authorization and Health services, as Envoy would use them.
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { AUTHZ_SERVICE, authorizationClient } from '../../../src/envoy/protos.ts';

export const AUTHZ = AUTHZ_SERVICE;

export interface CheckResult {
  status?: { code?: number };
  denied_response?: { status?: { code?: string | number } };
}

export function clients(
  address: string,
  creds: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
) {
  const Authz = authorizationClient();
  const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
  const authz = new Authz(address, creds, options) as unknown as grpc.Client & Record<string, Function>;
  const health = new Health(address, creds, options) as unknown as grpc.Client & Record<string, Function>;
  return {
    authz,
    health,
    check(path: string, headers: Record<string, string> = {}, deadlineMs = 10_000): Promise<CheckResult> {
      const req = {
        attributes: {
          source: { address: { socket_address: { address: '127.0.0.1', port_value: 40000 } } },
          request: {
            http: {
              method: 'GET',
              path,
              host: 'api.example.com',
              headers: { ':method': 'GET', ':path': path, ':authority': 'api.example.com', ...headers },
            },
          },
        },
      };
      return new Promise((resolve, reject) =>
        authz.Check(req, { deadline: Date.now() + deadlineMs }, (err: Error | null, res: CheckResult) =>
          err ? reject(err) : resolve(res),
        ),
      );
    },
    healthCheck(service = AUTHZ, deadlineMs = 3000): Promise<string> {
      return new Promise((resolve, reject) =>
        health.Check(
          { service },
          { deadline: Date.now() + deadlineMs },
          (err: Error | null, res: { status: string | number }) => (err ? reject(err) : resolve(String(res.status))),
        ),
      );
    },
    /** Health.Watch: every status the server streams, in order. */
    watch(service = AUTHZ): { statuses: string[]; call: grpc.ClientReadableStream<unknown>; ended: Promise<void> } {
      const statuses: string[] = [];
      const call = health.Watch({ service }) as grpc.ClientReadableStream<{ status: string | number }>;
      call.on('data', (m: { status: string | number }) => statuses.push(String(m.status)));
      const ended = new Promise<void>((resolve) => {
        call.on('error', () => resolve());
        call.on('end', () => resolve());
      });
      return { statuses, call, ended };
    },
    close() {
      authz.close();
      health.close();
    },
  };
}
