// The layers of src/ and the import rules that keep them (CONTRIBUTING.md, "Layers"). Checked by
// `npm run deps` and by test/unit/layers.test.ts, so a circle or an import against the layers
// fails the suite. From the bottom:
//
//   core/         request, decision, reasons, decide(), and the interfaces decide() is given
//   plumbing/     component context, readiness, ops handler type, metric and cache helpers
//   policy/       the config schema and its compilation into the core's policy interfaces
//   stores/       key stores, rate limiters, Redis
//   credentials/  one verifier per credential kind, registered by kind (credentials/registry.ts)
//   runtime/      the running service: config generations, components, metrics, logs
//   envoy/ http/  adapters: the gRPC Check service and its codec; the ops and forward-auth listener
//   cli/          the commands, `serve` and its workers among them
//
// A module imports its own layer and those below it, never one above. Every folder of src/ is in
// LAYERS (test/unit/layers.test.ts): a new folder takes its place here.
const LAYERS = [
  'core',
  'plumbing',
  'telemetry',
  'policy|resources',
  'stores',
  'credentials',
  'runtime',
  'envoy|http',
  'cli',
];

const above = (i) => LAYERS.slice(i + 1).join('|');

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle: the modules in it can only be understood, tested and loaded together.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `layer-${layer.replace('|', '-')}`,
      severity: 'error',
      comment: `src/${layer}/ may import only its own layer and those below it (${LAYERS.slice(0, i).join(', ') || 'nothing'}).`,
      from: { path: `^src/(${layer})/` },
      to: { path: `^src/(${above(i)})/` },
    })),
    {
      name: 'envoy-and-http-apart',
      severity: 'error',
      comment: 'The two adapters do not use each other: each translates its own wire format to the core.',
      from: { path: '^src/envoy/' },
      to: { path: '^src/http/' },
    },
    {
      name: 'http-and-envoy-apart',
      severity: 'error',
      comment: 'The two adapters do not use each other: each translates its own wire format to the core.',
      from: { path: '^src/http/' },
      to: { path: '^src/envoy/' },
    },
    {
      name: 'src-not-from-tests',
      severity: 'error',
      comment: 'Production code never loads test, bench or script code (the proto-loader oracle lives in test/).',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    // Type-only imports count: a type from a higher layer ties the lower one to it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
