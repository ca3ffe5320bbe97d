// A worker thread running a TypeScript module: Node 20 does not pass `--import tsx` on to worker
// threads, so the worker registers tsx itself before importing the module.
import { Worker } from 'node:worker_threads';

const TSX_API = import.meta.resolve('tsx/esm/api');

export function tsWorker(module: URL, workerData: unknown): Worker {
  const code = `import(${JSON.stringify(TSX_API)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(module.href)}); });`;
  return new Worker(code, { eval: true, workerData });
}
