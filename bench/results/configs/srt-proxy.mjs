import { createHttpProxyServer } from '/root/.cache/sluice-bench/srt/node_modules/@anthropic-ai/sandbox-runtime/dist/sandbox/http-proxy.js';
const [port, allowed] = [Number(process.argv[2]), process.argv[3]];
const server = createHttpProxyServer({ filter: (_port, host) => host === allowed });
server.listen(port, '127.0.0.1');
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
