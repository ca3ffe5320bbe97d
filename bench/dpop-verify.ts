// Cost of one DPoP proof verification (verifyDpopProof: header checks, jose signature
// verification, claims, htu, ath, thumbprint) for ES256 and EdDSA (Ed25519) proofs made by the
// `dpop` package, every proof never seen before: median wall µs of one awaited verification
// (latency), and CPU µs per verification when many overlap (throughput). Also the cost of reading
// a client certificate from source.certificate, first time and repeated.
// Usage: [CERT_PEM=<a PEM certificate>] node --import tsx bench/dpop-verify.ts [proofs=3000]
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as dpop from 'dpop';
import { certificateFromEnvoy } from '../src/credentials/pop/certificate.ts';
import { verifyDpopProof, type DpopPolicy } from '../src/credentials/pop/dpop.ts';
import { normalizeHtu } from '../src/credentials/pop/htu.ts';
import { median } from './lib/stats.ts';

const N = Number(process.argv[2] ?? 3000);
const HTU = 'https://api.example.com/v1/orders';
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
const policy: DpopPolicy = { algorithms: ['ES256', 'EdDSA', 'Ed25519'], maxAgeSeconds: 300, clockSkewSeconds: 5 };
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

for (const alg of ['ES256', 'Ed25519'] as const) {
  const kp = await dpop.generateKeyPair(alg);
  const jkt = await dpop.calculateThumbprint(kp.publicKey);
  const proofs: string[] = [];
  for (let i = 0; i < N * 2; i++) proofs.push(await dpop.generateProof(kp, HTU, 'GET', undefined, TOKEN));
  const verify = async (proof: string) => {
    const r = await verifyDpopProof(
      { proof, method: 'GET', htu: normalizeHtu(HTU), accessToken: TOKEN, cnfJkt: jkt },
      policy,
    );
    if (!r.ok) throw new Error(r.reason);
  };
  for (const p of proofs.slice(0, 200)) await verify(p); // warm up

  const latencies: number[] = [];
  for (const p of proofs.slice(0, N)) {
    const t = performance.now();
    await verify(p);
    latencies.push((performance.now() - t) * 1000);
  }
  const c0 = cpuUs();
  const batch = proofs.slice(N);
  for (let i = 0; i < batch.length; i += 64) await Promise.all(batch.slice(i, i + 64).map(verify));
  const cpuPer = (cpuUs() - c0) / batch.length;
  console.log(
    `${alg === 'Ed25519' ? 'EdDSA' : alg}  latency median ${median(latencies).toFixed(0)} µs   CPU ${cpuPer.toFixed(0)} µs per proof (64 at a time)`,
  );
}

// A client certificate: parsed the first time, then from the parse cache.
const pemFile = process.env.CERT_PEM;
const pem = pemFile ? readFileSync(pemFile, 'utf8') : undefined;
if (pem) {
  const encoded = encodeURIComponent(pem);
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) new X509Certificate(pem);
  const parse = ((performance.now() - t0) * 1000) / 1000;
  certificateFromEnvoy(encoded);
  const t1 = performance.now();
  for (let i = 0; i < 10000; i++) certificateFromEnvoy(encoded);
  const cached = ((performance.now() - t1) * 1000) / 10000;
  console.log(
    `certificate: X509Certificate parse ${parse.toFixed(1)} µs; certificateFromEnvoy repeated ${cached.toFixed(1)} µs`,
  );
}
