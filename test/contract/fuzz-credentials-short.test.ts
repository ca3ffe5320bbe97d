// The shortened credential fuzz for every CI build (FUZZ_CRED_ITERATIONS defaults to 1200);
// `npm run test:hardening` runs the long one.
import './../hardening/fuzz-credentials.test.ts';
