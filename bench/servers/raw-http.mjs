// @ts-check
/**
 * raw-http — the hand-written HTTP baseline: node:net, no parser beyond finding the end of each
 * request's headers, the same fixed answer as packages/examples/src/httpd.ts (GET only, no bodies).
 *
 *   node bench/servers/raw-http.mjs [port]
 */
import net from 'node:net';

const port = Number(process.argv[2] ?? 0);
const END = Buffer.from('\r\n\r\n');
const BODY = 'Hello, world!\n';
const OK = Buffer.from(
  `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\nConnection: keep-alive\r\n\r\n${BODY}`,
);

const server = net.createServer((socket) => {
  socket.on('error', () => {});
  /** @type {Buffer | null} */
  let pending = null;
  socket.on('data', (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let start = 0;
    for (let end = buf.indexOf(END, start); end !== -1; end = buf.indexOf(END, start)) {
      socket.write(OK);
      start = end + END.length;
    }
    pending = start < buf.length ? buf.subarray(start) : null;
  });
});
server.listen({ port, host: '127.0.0.1', backlog: 511 }, () => {
  process.stdout.write(
    `${JSON.stringify({ port: /** @type {import('node:net').AddressInfo} */ (server.address()).port })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
