// The shortened soak (SOAK_SECONDS defaults to 20) for every CI build; `npm run test:hardening`
// runs the 10-minute one.
import '../hardening/soak.test.ts';
