// The floor: a grpc-js Authorization server whose Check answers OK and does nothing else.
// Same Envoy protos and the same proto-loader options as Portcullis, so the difference between the
// two is exactly what Portcullis does per Check. grpc-js defaults, as any grpc-js service starts;
// `channelz-off` as the second argument turns channelz off as Portcullis does (bench --floor-channelz-off).
// Usage: floor-server.ts <port> [channelz-off]; prints "listening <port>".
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../src/envoy/protos.ts';

const port = Number(process.argv[2] ?? 0);
const server = new grpc.Server(process.argv[3] === 'channelz-off' ? { 'grpc.enable_channelz': 0 } : {});
const OK = { status: { code: 0 } };
server.addService(authorizationService(), {
  Check(_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
    callback(null, OK);
  },
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
  if (err) {
    console.error(`floor: cannot listen on 127.0.0.1:${port}: ${err.message}`);
    process.exit(2);
  }
  console.log(`listening ${p}`);
});
const stop = () => server.tryShutdown(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
