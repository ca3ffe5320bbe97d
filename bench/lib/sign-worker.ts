// Signs a slice of a token pool (see tokens.ts signPool).
import { createPrivateKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { signToken, type SigningKey } from './tokens.ts';

const { key, from, count, prefix } = workerData as { key: SigningKey; from: number; count: number; prefix: string };
const pk = createPrivateKey(key.privatePem);
const now = Math.floor(Date.now() / 1000);
const out: string[] = [];
for (let i = from; i < from + count; i++) {
  out.push(
    signToken(
      key,
      { sub: `user-${i % 1000}`, client_id: 'bench-web', scope: 'orders:read profile', jti: `${prefix}-${i}` },
      pk,
      now,
    ),
  );
}
parentPort!.postMessage(out);
