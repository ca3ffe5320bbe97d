// The shortened Redis fault run for every CI build (FAULT_SECONDS defaults to 3);
// `npm run test:hardening` runs the long one.
// @module-tag redis-server
import '../hardening/faults-redis.test.ts';
