// @ts-check
/**
 * fd-receiver — the receiving half of the descriptor floor: reads records of descriptors from the
 * SOCK_SEQPACKET socket on descriptor 3 and builds a net.Socket from each, reading (a 'data'
 * listener, resume()) as a server would; times from the first record to the Nth socket built.
 *
 *   node bench/servers/fd-receiver.mjs N      (descriptor 3: one end of a seqpacket pair)
 *
 * Prints {"ready":true} once watching, then {"sockets":N,"records":R,"ms":T}; exits when stdin closes.
 */
import net from 'node:net';
import { sayJson as say } from '../lib/json-line.mjs';
import { nativeOrThrow } from '../lib/native.mjs';

const CHANNEL = 3;
const total = Number(process.argv[2]);
const unix = await nativeOrThrow();
const { EAGAIN, MSG_CTRUNC, READABLE } = unix.constants;

/** @type {net.Socket[]} */
const sockets = [];
let first = 0;
let records = 0;
let reported = false;
const buffer = Buffer.alloc(64);
/** @param {Buffer} chunk */
const onData = (chunk) => chunk;

function drain() {
  for (;;) {
    const r = unix.receive(CHANNEL, buffer);
    if (typeof r === 'number') {
      if (r === -EAGAIN) return;
      throw new Error(`receive on the seqpacket socket failed: errno ${-r}`);
    }
    if (r.bytes === 0 && r.fds.length === 0) {
      watcher.close(); // the sender closed its end
      return;
    }
    if (records++ === 0) first = performance.now();
    if (r.flags & MSG_CTRUNC) throw new Error('a record came with its descriptors cut off');
    for (const fd of r.fds) {
      const s = new net.Socket({ fd, readable: true, writable: true });
      s.on('error', () => {});
      s.on('data', onData);
      s.resume();
      sockets.push(s);
    }
    if (!reported && sockets.length >= total) {
      reported = true;
      say({ sockets: sockets.length, records, ms: performance.now() - first });
    }
  }
}

const watcher = unix.watch(CHANNEL, READABLE, drain);
say({ ready: true });
process.stdin.resume();
process.stdin.once('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
