// The shortened process-level fault run (broken config reloads, SIGTERM mid-load) for every CI
// build (FAULT_SECONDS defaults to 3); `npm run test:hardening` runs the long one.
import '../hardening/faults-process.test.ts';
