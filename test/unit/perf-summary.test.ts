// bench/perf-summary.ts reads `perf script` text; these blocks are trimmed from real ones
// (perf 6 on this VM, node --perf-basic-prof), in both header formats perf prints.
import { describe, expect, it } from 'vitest';
import { categoryOf, parsePerfScript, summarize } from '../../bench/perf-summary.ts';

// `perf script -F comm,pid,tid,ip,sym,dso`: "comm pid/tid", frames without offsets.
const withPid = `node 10440/10440 
	    7f80ec225f23 JS:*verifyApiKey file:///work/main/src/credentials/apikey.ts:1:1458 (/tmp/perf-10440.map)
	    7f80ec24ecb3 JS:*decide file:///work/main/src/core/decide.ts:1:570 (/tmp/perf-10440.map)

node 10440/10440 
	         152b77b Builtins_KeyedLoadIC_Megamorphic (/usr/bin/node)
	    7f80ec225f23 JS:*sendMetadata /work/main/node_modules/@grpc/grpc-js/build/src/server-interceptors.js:651:17 (/tmp/perf-10440.map)

node 10440/10445 
	         1dbd5cd v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot> (/usr/bin/node)
	         1dbf2b4 v8::internal::ScavengerCollector::JobTask::Run (/usr/bin/node)

node 10440/10440 
	         8fb917 do_name (/usr/bin/node)
	         8fc9d8 int_ctx_new (/usr/bin/node)
	    7f80ec23e778 JS:*verifyOneShot node:internal/crypto/sig:234:23 (/tmp/perf-10440.map)
	    7f80ec26e5bc JS:*verify file:///work/main/src/credentials/jwt/verifier.ts:1:769 (/tmp/perf-10440.map)

node 10439/10439 
	ffffffff81754df0 clear_page_erms ([kernel.kallsyms])
	          108cae _int_malloc (/usr/lib/x86_64-linux-gnu/libc.so.6)
`;

// Default perf script: "comm tid time: period event:", frames with +0x offsets.
const defaultFormat = `node 12415  3403.102004:     500250 cpu-clock:ppp: 
	         152b77b Builtins_MapPrototypeDelete+0x47b (/usr/bin/node)
	    7f80ec225f23 JS:*BaseServerInterceptingCall /work/main/node_modules/@grpc/grpc-js/build/src/server-interceptors.js:346:16+0x1023 (/tmp/perf-12415.map)
`;

describe('perf-summary', () => {
  it('groups samples by process, counting the threads apart', () => {
    const [pcl, floor] = summarize(parsePerfScript(withPid));
    expect(pcl.pid).toBe(10440);
    expect(pcl.samples).toBe(4);
    expect([...pcl.threads]).toEqual([
      [10440, 3],
      [10445, 1],
    ]);
    expect(floor).toMatchObject({ pid: 10439, samples: 1 });
    expect(floor.leaf.get('kernel')).toBe(1);
    expect(floor.caller.get('no JS frame')).toBe(1);
  });

  it('names where the CPU was and whose JavaScript asked for it', () => {
    const [pcl] = summarize(parsePerfScript(withPid));
    expect(Object.fromEntries(pcl.leaf)).toEqual({ 'portcullis JS': 1, 'V8 builtins': 1, 'V8 GC': 1, OpenSSL: 1 });
    // The megamorphic load belongs to grpc-js, the OpenSSL context set-up to node:crypto's verify.
    expect(Object.fromEntries(pcl.caller)).toEqual({
      'portcullis JS': 1,
      'grpc-js JS': 1,
      'no JS frame': 1,
      'node JS': 1,
    });
    expect([...pcl.jsFunctions.keys()]).toEqual([
      '*verifyApiKey src/credentials/apikey.ts:1:1458',
      '*sendMetadata server-interceptors.js:651:17',
      '*verifyOneShot node:crypto/sig:234:23',
    ]);
  });

  it('reads the default format too (thread ids only, offsets on frames)', () => {
    const [s] = parsePerfScript(defaultFormat);
    expect(s).toMatchObject({ pid: 12415, tid: 12415 });
    expect(s.frames[0]).toEqual({ symbol: 'Builtins_MapPrototypeDelete', dso: '/usr/bin/node' });
    expect(categoryOf(s.frames[1])).toBe('grpc-js JS');
  });

  it("counts the compiled dist/ as Portcullis's JavaScript, as it does the sources", () => {
    const frame = { symbol: 'JS:*decide file:///work/main/dist/core/decide.js:142:17', dso: '/tmp/perf-1.map' };
    expect(categoryOf(frame)).toBe('portcullis JS');
    const [s] = summarize(parsePerfScript(`node 7/7 \n\t    7f80ec24ecb3 ${frame.symbol} (${frame.dso})\n`));
    expect([...s.jsFunctions.keys()]).toEqual(['*decide dist/core/decide.js:142:17']);
    // A dependency's own dist/ is not Portcullis's.
    expect(categoryOf({ symbol: 'JS:*parse file:///work/main/node_modules/yaml/dist/parse.js:1:1', dso: '' })).toBe(
      'other JS',
    );
  });

  it('tells the native categories apart', () => {
    const at = (symbol: string, dso = '/usr/bin/node') => categoryOf({ symbol, dso });
    expect(at('RegExp:^[A-Za-z0-9_-]+$')).toBe('regexps');
    expect(at('nghttp2_session_mem_recv2')).toBe('nghttp2');
    expect(at('node::http2::Http2Session::FindStream')).toBe('node http2 C++');
    expect(at('node::BaseObject::BaseObject')).toBe('node C++');
    expect(at('v8::internal::StringTable::LookupKey')).toBe('V8 runtime');
    expect(at('__bn_sqrx8x_reduction')).toBe('OpenSSL');
    expect(at('uv__io_poll')).toBe('libuv');
    expect(at('malloc', '/usr/lib/x86_64-linux-gnu/libc.so.6')).toBe('libc');
  });
});
