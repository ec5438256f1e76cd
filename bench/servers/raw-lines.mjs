// @ts-check
/**
 * raw-lines — the line-protocol baseline: a hand-written node:net server that answers each
 * \n-terminated line with the line, as packages/examples/src/lines.ts does through the input helpers.
 *
 *   node bench/servers/raw-lines.mjs [port]
 */
import net from 'node:net';

const port = Number(process.argv[2] ?? 0);
const LF = 0x0a;
const CR = 0x0d;

const server = net.createServer((socket) => {
  socket.on('error', () => {});
  /** @type {Buffer | null} */
  let pending = null; // an incomplete last line, kept until its \n arrives
  socket.on('data', (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(LF, start); nl !== -1; nl = buf.indexOf(LF, start)) {
      const end = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
      // Same reply shape as lines.ts: the line's bytes, then \n, as one write.
      const reply = Buffer.allocUnsafe(end - start + 1);
      buf.copy(reply, 0, start, end);
      reply[end - start] = LF;
      socket.write(reply);
      start = nl + 1;
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
