// Runs the distinct-payload generator (generator-worker.ts) in worker threads and merges results.
import { tsWorker } from './ts-worker.ts';
import type { GeneratorEvent, GeneratorJob, GeneratorResult } from './generator-worker.ts';
import type { LoadResult } from './h2load.ts';
import { percentiles } from './stats.ts';

export interface GeneratorOptions extends Omit<GeneratorJob, 'frames'> {
  frames: Buffer[];
  threads: number;
  /** Called when the first thread starts measuring and when the last one stops. */
  onMeasuring?: () => void;
  onStopped?: () => void;
}

function runOne(job: GeneratorJob, onEvent: (e: GeneratorEvent) => void): Promise<GeneratorResult> {
  return new Promise((resolve, reject) => {
    const w = tsWorker(new URL('./generator-worker.ts', import.meta.url), job);
    w.on('message', (m: GeneratorResult | GeneratorEvent) => {
      if ('event' in m) return onEvent(m);
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`generator worker exited with ${code}`));
    });
  });
}

export async function runGenerator(
  opts: GeneratorOptions,
): Promise<LoadResult & { exhausted: boolean; nonOk: number }> {
  const { threads, frames, onMeasuring, onStopped, ...rest } = opts;
  // Each thread gets its own slice, so no frame is sent twice.
  const per = Math.ceil(frames.length / threads);
  let measuring = 0;
  let stopped = 0;
  const onEvent = (e: GeneratorEvent) => {
    if (e.event === 'measuring' && measuring++ === 0) onMeasuring?.();
    if (e.event === 'stopped' && ++stopped === threads) onStopped?.();
  };
  const results = await Promise.all(
    Array.from({ length: threads }, (_, i) =>
      runOne({ ...rest, frames: frames.slice(i * per, (i + 1) * per) }, onEvent),
    ),
  );
  const requests = results.reduce((s, r) => s + r.requests, 0);
  const seconds = Math.max(...results.map((r) => r.seconds));
  const all = new Float64Array(results.reduce((s, r) => s + r.latencies.length, 0));
  let o = 0;
  for (const r of results) {
    all.set(r.latencies, o);
    o += r.latencies.length;
  }
  const [p50, p99] = percentiles(all, [50, 99]);
  return {
    requests,
    seconds,
    rps: seconds > 0 ? requests / seconds : 0,
    p50Ms: p50,
    p99Ms: p99,
    failed: results.reduce((s, r) => s + r.errors, 0),
    nonOk: results.reduce((s, r) => s + r.nonOk, 0),
    exhausted: results.some((r) => r.exhausted),
  };
}
