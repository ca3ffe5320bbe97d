// The shortened identity-provider fault run for every CI build (FAULT_SECONDS defaults to 3);
// `npm run test:hardening` runs the long one.
import '../hardening/faults-idp.test.ts';
