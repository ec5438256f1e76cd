// @ts-check
/**
 * fd-sender — the sending half of the descriptor floor: accepts N connections (each echoes the one
 * byte loadgen's idle client proves it with), and once a line arrives on stdin sends their
 * descriptors over the SOCK_SEQPACKET socket on descriptor 3, up to MAX_FDS a record. It keeps its
 * own copies (and the connections open) until stdin closes.
 *
 *   node bench/servers/fd-sender.mjs N      (descriptor 3: one end of a seqpacket pair)
 *
 * Prints {"port":P} once listening, {"accepted":N} once all are in, {"sent":N,"records":R} when sent.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';
import { sayJson as say } from '../lib/json-line.mjs';
import { nativeOrThrow } from '../lib/native.mjs';

const CHANNEL = 3;
/** ETOOMANYREFS: more descriptors in flight than the kernel lets one user have; retried shortly. */
const ETOOMANYREFS = 109;
const total = Number(process.argv[2]);
const unix = await nativeOrThrow();
const { MAX_FDS, EAGAIN, WRITABLE } = unix.constants;

/** @type {number[]} */
const fds = [];
const server = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.once('data', (chunk) => {
    socket.write(chunk);
    socket.pause(); // the receiver serves it from here on
    const fd = /** @type {{ _handle?: { fd?: number } }} */ (/** @type {unknown} */ (socket))._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) throw new Error('an accepted socket has no descriptor');
    fds.push(fd);
    if (fds.length === total) say({ accepted: total });
  });
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, () => {
  say({ port: /** @type {import('node:net').AddressInfo} */ (server.address()).port });
});

let next = 0;
let records = 0;
const header = Buffer.alloc(4);
/** sendSome sends records until all are sent or the socket is full (then waits to be writable). */
function sendSome() {
  while (next < fds.length) {
    const batch = fds.slice(next, next + MAX_FDS);
    header.writeUInt32LE(batch.length);
    const r = unix.send(CHANNEL, header, batch);
    if (r === -EAGAIN) {
      const w = unix.watch(CHANNEL, WRITABLE, () => {
        w.close();
        sendSome();
      });
      return;
    }
    if (r === -ETOOMANYREFS) {
      setTimeout(sendSome, 1);
      return;
    }
    if (r < 0) throw new Error(`send on the seqpacket socket failed: errno ${-r}`);
    next += batch.length;
    records++;
  }
  say({ sent: next, records });
}

const rl = createInterface({ input: process.stdin });
rl.once('line', () => sendSome());
rl.once('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
