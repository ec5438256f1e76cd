// @ts-check
/**
 * raw-echo — the baseline: a node:net echo server with nothing in between. Also the raw baseline of
 * the reload test, where `--header` greets each connection with "PID %011d\n" first.
 *
 *   node bench/servers/raw-echo.mjs [port] [--header]
 *
 * Prints {"port":N} on stdout once listening.
 */
import net from 'node:net';

const port = Number(process.argv[2] ?? 0);
const header = process.argv.includes('--header')
  ? Buffer.from(`PID ${String(process.pid).padStart(11, '0')}\n`)
  : null;

const server = net.createServer((socket) => {
  socket.on('error', () => {});
  if (header) socket.write(header);
  socket.on('data', (chunk) => socket.write(chunk));
});
server.listen({ port, host: '127.0.0.1', backlog: 511 }, () => {
  process.stdout.write(
    `${JSON.stringify({ port: /** @type {import('node:net').AddressInfo} */ (server.address()).port })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
