// @ts-check
/**
 * node-http — the node:http baseline: the same fixed answer as packages/examples/src/httpd.ts.
 *
 *   node bench/servers/node-http.mjs [port]
 */
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const BODY = 'Hello, world!\n';

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
});
server.listen({ port, host: '127.0.0.1', backlog: 511 }, () => {
  process.stdout.write(
    `${JSON.stringify({ port: /** @type {import('node:net').AddressInfo} */ (server.address()).port })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
