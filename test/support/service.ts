// Starts a real Portcullis (gRPC + ops listeners on ephemeral ports) from a config written to a
// temp folder, and a real grpc-js client built from Envoy's protos.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { authorizationClient } from '../../src/envoy/protos.ts';
import { serve, type Service } from '../../src/cli/serve.ts';
import {
  applyEnvoy,
  envoyCheckRequest,
  type CheckResponseMsg,
  type EnvoyOutcome,
  type EnvoyRequestInit,
} from './envoy.ts';

export interface TestService {
  dir: string;
  configFile: string;
  service: Service;
  grpcAddress: string;
  httpBase: string;
  client: grpc.Client & { Check: Function };
  /** Raw Check: the CheckResponse as Envoy receives it. */
  checkRaw(req: unknown, deadlineMs?: number): Promise<CheckResponseMsg>;
  /** Envoy-shaped request in, what the client and upstream see out. */
  envoy(init: EnvoyRequestInit): Promise<EnvoyOutcome & { response: CheckResponseMsg }>;
  logs: string[];
  stop(): Promise<void>;
}

export function tempDir(prefix = 'portcullis-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startService(
  configYaml: string,
  opts: { dir?: string; files?: Record<string, string> } = {},
): Promise<TestService> {
  const dir = opts.dir ?? tempDir();
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  const configFile = join(dir, 'portcullis.yaml');
  writeFileSync(configFile, configYaml);
  const logs: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const service = await serve({
    configFile,
    log,
    grpcAddress: '127.0.0.1:0',
    httpAddress: '127.0.0.1:0',
    watchIntervalMs: 200,
  });
  const grpcAddress = `127.0.0.1:${service.grpc.port}`;
  const Client = authorizationClient();
  const client = new Client(grpcAddress, grpc.credentials.createInsecure()) as unknown as TestService['client'];
  const checkRaw = (req: unknown, deadlineMs = 2000) =>
    new Promise<CheckResponseMsg>((resolve, reject) =>
      client.Check(req, { deadline: Date.now() + deadlineMs }, (err: Error | null, res: CheckResponseMsg) =>
        err ? reject(err) : resolve(res),
      ),
    );
  return {
    dir,
    configFile,
    service,
    grpcAddress,
    httpBase: `http://127.0.0.1:${service.ops.port}`,
    client,
    checkRaw,
    async envoy(init) {
      const req = envoyCheckRequest(init);
      const response = await checkRaw(req);
      return { ...applyEnvoy(req, response), response };
    },
    logs,
    async stop() {
      client.close();
      await service.stop();
    },
  };
}

export async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
