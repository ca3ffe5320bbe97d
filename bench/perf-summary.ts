// Summarizes a Linux `perf` profile of the servers (native code, GC, kernel and JIT-compiled
// JavaScript together, which `node --cpu-prof` cannot show), per process: where the samples fall
// (leaf), which JavaScript called them (the nearest JS frame), and the JS functions on top.
// Record with the servers started under `--perf-basic-prof` (so JIT frames have names):
//   perf record -F 1999 -g -p <pid>[,<pid>] -o /tmp/perf.data -- sleep 30
//   perf script -i /tmp/perf.data > /tmp/perf.txt
//   node --import tsx bench/perf-summary.ts /tmp/perf.txt [top=30]
// docs/performance.md, "Where the time goes, with perf".
import { readFileSync } from 'node:fs';

export type Category =
  | 'portcullis JS'
  | 'grpc-js JS'
  | 'protobufjs JS'
  | 'node JS'
  | 'other JS'
  | 'V8 builtins'
  | 'V8 GC'
  | 'kernel'
  | 'libc'
  | 'nghttp2'
  | 'node http2 C++'
  | 'OpenSSL'
  | 'regexps'
  | 'V8 runtime'
  | 'node C++'
  | 'libuv'
  | 'other native';

export interface Frame {
  symbol: string;
  dso: string;
}

export interface Sample {
  pid: number;
  /** The thread; the same as pid when perf script was not given `-F comm,pid,tid,...`. */
  tid: number;
  frames: Frame[];
}

/** `perf script` output (default fields) into samples, leaf frame first. */
export function parsePerfScript(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length < 2) continue;
    const head = /^\s*\S+\s+(\d+)(?:\/(\d+))?(?:\s|$)/.exec(lines[0]);
    if (!head) continue;
    const frames = lines.slice(1).map((l) => {
      const m = /^\s*[0-9a-f]+\s+(.*?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)\s*$/.exec(l);
      return m ? { symbol: m[1], dso: m[2] } : { symbol: l.trim(), dso: '' };
    });
    samples.push({ pid: Number(head[1]), tid: Number(head[2] ?? head[1]), frames });
  }
  return samples;
}

function jsCategory(symbol: string): Category | undefined {
  if (!symbol.startsWith('JS:')) return undefined;
  // Portcullis's own code: its sources (through tsx) or its build (dist/, as production runs it).
  if (/\/(src\/[^ ]*\.ts|dist\/[^ ]*\.js)/.test(symbol) && !symbol.includes('node_modules')) return 'portcullis JS';
  if (symbol.includes('grpc-js')) return 'grpc-js JS';
  if (symbol.includes('protobufjs')) return 'protobufjs JS';
  if (/ node:/.test(symbol)) return 'node JS';
  return 'other JS';
}

export function categoryOf(f: Frame): Category {
  const js = jsCategory(f.symbol);
  if (js) return js;
  if (f.dso.includes('kernel')) return 'kernel';
  if (f.symbol.startsWith('Builtins_')) return 'V8 builtins';
  if (/Scaveng|MarkCompact|Marking|Sweep|Evacuat|v8::internal::Heap::|ArrayBufferSweeper/.test(f.symbol))
    return 'V8 GC';
  if (
    /libc[.-]/.test(f.dso) ||
    /^(_int_malloc|malloc|_int_free|cfree|free|malloc_consolidate|unlink_chunk|__mem(move|set|cpy))/.test(f.symbol)
  )
    return 'libc';
  if (f.symbol.startsWith('nghttp2')) return 'nghttp2';
  if (f.symbol.includes('http2')) return 'node http2 C++';
  // Node links OpenSSL in: its functions are in the node binary.
  if (f.symbol.startsWith('RegExp:')) return 'regexps';
  if (
    /^(EVP_|ossl_|OSSL_|OPENSSL_|bn_|__bn_|BN_|RSA_|rsa_|ecp_|ECDSA_|sha256_|SHA256|do_name|int_ctx_new|do_sigver_init|CRYPTO_)/.test(
      f.symbol,
    ) ||
    f.dso.includes('libcrypto')
  )
    return 'OpenSSL';
  if (f.symbol.startsWith('v8::')) return 'V8 runtime';
  if (f.symbol.startsWith('node::')) return 'node C++';
  if (f.symbol.startsWith('uv_') || f.symbol.startsWith('uv__')) return 'libuv';
  return 'other native';
}

/** A JS frame's name without the checkout's path, e.g. "*decide dist/core/decide.js:142:17". */
function shortJs(symbol: string): string {
  return symbol
    .replace(/^JS:/, '')
    .replace(/file:\/\/\/\S*?\/(src|dist|bench|test)\//, '$1/')
    .replace(/\S*node_modules\/(@grpc\/grpc-js\/build\/src\/)?/, '')
    .replace(/node:internal\//, 'node:');
}

export interface Summary {
  pid: number;
  samples: number;
  /** Leaf frame's category: where the CPU was. */
  leaf: Map<Category, number>;
  /** Category of the nearest JavaScript frame: whose code asked for the work. */
  caller: Map<Category | 'no JS frame', number>;
  /** Nearest JS frame, by function. */
  jsFunctions: Map<string, number>;
  /** Samples by thread: the main thread, and V8's GC and compiler helpers, libuv's pool. */
  threads: Map<number, number>;
}

export function summarize(samples: Sample[]): Summary[] {
  const byPid = new Map<number, Summary>();
  const add = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const s of samples) {
    let sum = byPid.get(s.pid);
    if (!sum)
      byPid.set(
        s.pid,
        (sum = {
          pid: s.pid,
          samples: 0,
          leaf: new Map(),
          caller: new Map(),
          jsFunctions: new Map(),
          threads: new Map(),
        }),
      );
    sum.samples++;
    add(sum.threads, s.tid);
    add(sum.leaf, categoryOf(s.frames[0]));
    const js = s.frames.find((f) => f.symbol.startsWith('JS:'));
    add(sum.caller, js ? jsCategory(js.symbol)! : 'no JS frame');
    if (js) add(sum.jsFunctions, shortJs(js.symbol));
  }
  return [...byPid.values()].sort((a, b) => b.samples - a.samples);
}

function table<K>(m: Map<K, number>, total: number, limit = Infinity): string[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${String(k)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node --import tsx bench/perf-summary.ts <perf script output> [top=30]');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 30);
  for (const s of summarize(parsePerfScript(readFileSync(file, 'utf8')))) {
    const others = s.samples - (s.threads.get(s.pid) ?? 0);
    console.log(
      `pid ${s.pid}: ${s.samples} samples, ${((100 * others) / s.samples).toFixed(1)}% of them off the main thread (${s.threads.size - 1} other threads)`,
    );
    console.log('where the CPU was (leaf frame):', '\n' + table(s.leaf, s.samples).join('\n'));
    console.log('whose code asked for it (nearest JS frame):', '\n' + table(s.caller, s.samples).join('\n'));
    console.log(`nearest JS frame, top ${top}:`, '\n' + table(s.jsFunctions, s.samples, top).join('\n'));
    console.log();
  }
}
