// @ts-check
/**
 * accept-clock — the accept floor of the migrate scenario: a raw node:net echo server that times each
 * burst of N connections from the inside, from its first 'connection' event to its Nth.
 *
 *   node bench/servers/accept-clock.mjs N
 *
 * Prints {"port":P} once listening, then {"burst":I,"conns":N,"ms":T} after every N connections.
 */
import net from 'node:net';

const burst = Number(process.argv[2]);
if (!(burst > 0)) throw new Error('usage: accept-clock.mjs N (connections a burst)');
let count = 0;
let first = 0;
let bursts = 0;

const server = net.createServer((socket) => {
  const t = performance.now();
  if (count === 0) first = t;
  socket.on('error', () => {});
  socket.on('data', (chunk) => socket.write(chunk));
  if (++count === burst) {
    count = 0;
    process.stdout.write(`${JSON.stringify({ burst: ++bursts, conns: burst, ms: t - first })}\n`);
  }
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, () => {
  process.stdout.write(
    `${JSON.stringify({ port: /** @type {import('node:net').AddressInfo} */ (server.address()).port })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
