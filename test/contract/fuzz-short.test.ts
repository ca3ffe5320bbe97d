// The shortened fuzz run for every CI build; `npm run test:hardening` runs the long one.
import './../hardening/fuzz-grpc.test.ts';
