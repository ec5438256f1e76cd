/**
 * Syslog receivers for tests, each a real socket the test owns: udp and tcp on 127.0.0.1 port 0,
 * and a unix datagram socket bound through the native module. They keep every message and parse
 * the RFC 3164 form Sys::Syslog sends.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUnix, READABLE } from '@netplex/unix';
import { onTestFinished } from 'vitest';

/** Rfc3164 is one message as Sys::Syslog sends it: `<PRI>Mmm dd hh:mm:ss ident[pid]: message\n\0`. */
export interface Rfc3164 {
  priority: number;
  timestamp: string;
  ident: string;
  pid: number | undefined;
  message: string;
  /** What followed the message: "\n\0", "\n" or "". */
  end: string;
  raw: string;
}

const rfc3164 =
  /^<(\d{1,3})>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ([^[:]+?)(?:\[(\d+)\])?: ([\s\S]*?)(\n?\0?)$/;

/** parseRfc3164 reads one message; undefined when it is not of that form. */
export function parseRfc3164(raw: string): Rfc3164 | undefined {
  const m = rfc3164.exec(raw);
  if (!m) return undefined;
  return {
    priority: Number(m[1]),
    timestamp: m[2]!,
    ident: m[3]!,
    pid: m[4] === undefined ? undefined : Number(m[4]),
    message: m[5]!,
    end: m[6]!,
    raw,
  };
}

/** Receiver keeps the messages a socket received and waits, bounded, for one. */
export class Receiver {
  readonly messages: string[] = [];
  #waiters = new Set<() => void>();

  constructor(readonly label: string) {}

  /** @internal a message came. */
  add(message: string): void {
    this.messages.push(message);
    for (const w of [...this.#waiters]) w();
  }

  /** parsed lists the messages of RFC 3164 form, parsed. */
  get parsed(): Rfc3164[] {
    return this.messages.flatMap((m) => parseRfc3164(m) ?? []);
  }

  /** waitFor resolves with the first message matching `pred`, failing after `ms` with what came. */
  waitFor(pred: (m: Rfc3164) => boolean, what: string, ms = 10_000): Promise<Rfc3164> {
    const found = () => this.parsed.find(pred);
    const now = found();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = found();
        if (!m) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `timed out after ${ms} ms waiting on ${this.label} for ${what}; received: ${JSON.stringify(this.messages.slice(-10))}`,
          ),
        );
      }, ms);
      this.#waiters.add(check);
    });
  }

  /** waitCount resolves once `n` messages came, failing after `ms`. */
  async waitCount(n: number, what: string, ms = 10_000): Promise<void> {
    if (this.messages.length >= n) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.messages.length < n) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `timed out after ${ms} ms waiting on ${this.label} for ${what}; got ${this.messages.length}`,
          ),
        );
      }, ms);
      this.#waiters.add(check);
    });
  }
}

/** udpReceiver listens on 127.0.0.1, port 0; each datagram is one message. */
export async function udpReceiver(): Promise<Receiver & { port: number }> {
  const socket = dgram.createSocket('udp4');
  onTestFinished(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  const receiver = Object.assign(new Receiver(`udp 127.0.0.1:${port}`), { port });
  socket.on('message', (m) => receiver.add(m.toString()));
  return receiver;
}

/**
 * tcpReceiver listens on 127.0.0.1, port 0. It splits each connection's bytes as RFC 6587 says: an
 * octet count when a frame starts with a digit, else at each newline (a NUL right after it, as
 * Sys::Syslog sends, is added to the message before).
 */
export async function tcpReceiver(): Promise<Receiver & { port: number; connections: number }> {
  const sockets = new Set<net.Socket>();
  let receiver!: Receiver & { port: number; connections: number };
  const server = net.createServer((socket) => {
    receiver.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      for (;;) {
        const counted = /^(\d+) /.exec(buffered);
        if (counted) {
          const start = counted[0].length;
          const length = Number(counted[1]);
          if (buffered.length < start + length) return;
          receiver.add(Buffer.from(buffered.slice(start, start + length), 'latin1').toString());
          buffered = buffered.slice(start + length);
          continue;
        }
        // A NUL right after a newline (Sys::Syslog's frames) belongs to the message before it.
        if (buffered.startsWith('\0') && receiver.messages.length > 0) {
          receiver.messages[receiver.messages.length - 1] += '\0';
          buffered = buffered.slice(1);
          continue;
        }
        const eol = buffered.indexOf('\n');
        if (eol === -1) return;
        receiver.add(Buffer.from(buffered.slice(0, eol + 1), 'latin1').toString());
        buffered = buffered.slice(eol + 1);
      }
    });
  });
  onTestFinished(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  receiver = Object.assign(new Receiver(`tcp 127.0.0.1:${port}`), { port, connections: 0 });
  return receiver;
}

/** unixReceiver binds a datagram socket in a temp dir through the native module; undefined without it. */
export function unixReceiver(): (Receiver & { path: string }) | undefined {
  const unix = loadUnix();
  if (!unix) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'netplex-syslog-'));
  const path = join(dir, 'log');
  const fd = unix.bindDatagram(path);
  if (fd < 0) throw new Error(`bindDatagram(${path}) failed: ${fd}`);
  const receiver = Object.assign(new Receiver(`unix ${path}`), { path });
  const buffer = Buffer.alloc(65536);
  const watcher = unix.watch(fd, READABLE, () => {
    for (;;) {
      const got = unix.receive(fd, buffer);
      if (typeof got === 'number') return;
      receiver.add(buffer.subarray(0, got.bytes).toString());
    }
  });
  onTestFinished(() => {
    watcher.close();
    unix.close(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return receiver;
}

/** closedUdpPort is a udp port on 127.0.0.1 that nothing listens on (it was bound, then closed). */
export async function closedUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** closedTcpPort is a tcp port on 127.0.0.1 that nothing listens on. */
export async function closedTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
