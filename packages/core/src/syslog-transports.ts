/**
 * syslog-transports — the sockets syslog messages go over (see syslog.ts): a unix datagram socket
 * through the native module (with a stream connection when the path is a stream socket), a
 * connected udp socket, a tcp connection reconnected with a growing delay, and inet (tcp, else
 * udp). None blocks the event loop; what waits is bounded, and Health says on stderr when a daemon
 * stops answering and when it answers again.
 */
import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import { constants } from 'node:os';
import type { UnixSockets } from '@netplex/unix';
import type { SyslogSocketKind } from './syslog-format.js';

/** The most messages (and bytes) that wait for a transport; past either, lines are dropped and counted. */
const MAX_QUEUED = 1000;
const MAX_QUEUED_BYTES = 1024 * 1024;
/** A datagram socket whose daemon's queue is full is tried again after this long. */
const RETRY_FULL_MS = 20;
/** Reconnect delays of a stream transport. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 30_000;
/** At most one "not answering" warning per this long. */
const WARN_EVERY_MS = 60_000;
/** A udp send that succeeds proves little (the refusal comes later): the daemon counts as back after this long without one. */
const UDP_QUIET_MS = 30_000;

/** Frame makes the bytes of one message for the transport that sends it (tcp frames differ). */
export type Frame = (kind: SyslogSocketKind) => Buffer;

export interface Transport {
  send(frame: Frame): void;
  close(): void;
}

/**
 * Health says, on stderr, when a daemon stops answering and when it answers again, and counts what
 * was lost. A daemon that keeps failing and coming back gets those two lines at most once a minute.
 */
export class Health {
  #down = false;
  /** Whether this outage was warned about (its end is then said too). */
  #warned = false;
  #dropped = 0;
  #warnedAt = Number.NEGATIVE_INFINITY;
  #failedAt = 0;

  constructor(
    readonly label: string,
    readonly warn: (line: string) => void,
  ) {}

  get down(): boolean {
    return this.#down;
  }

  get failedAt(): number {
    return this.#failedAt;
  }

  /** fail: the daemon did not take a message (or a connection). */
  fail(reason: string): void {
    this.#failedAt = Date.now();
    if (this.#down) return;
    this.#down = true;
    this.#warned = this.#failedAt - this.#warnedAt >= WARN_EVERY_MS;
    if (!this.#warned) return;
    this.#warnedAt = this.#failedAt;
    this.warn(`netplex: syslog ${this.label}: ${reason}; log lines are dropped until it answers`);
  }

  /** drop counts a line that was not sent. */
  drop(): void {
    this.#dropped++;
  }

  /** ok: the daemon answers; after a warned outage, says so with the count of lines lost. */
  ok(): void {
    if (!this.#down) return;
    this.#down = false;
    if (!this.#warned) return;
    const dropped = this.#dropped;
    this.#dropped = 0;
    const lost = dropped === 0 ? '' : `; ${dropped} log line${dropped === 1 ? ' was' : 's were'} dropped`;
    this.warn(`netplex: syslog ${this.label}: answering again${lost}`);
  }
}

/** errnoName turns a negative errno from the native module into its name (ENOENT, …). */
function errnoName(result: number): string {
  const entry = Object.entries(constants.errno).find(([, n]) => n === -result);
  return entry ? entry[0] : `errno ${-result}`;
}

function describeFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'nothing listens there (ECONNREFUSED)';
    case 'ENOENT':
      return 'no such socket (ENOENT)';
    case 'EPIPE':
    case 'ECONNRESET':
      return `the connection closed (${err.code})`;
    default:
      return err.code ? `${err.message} (${err.code})` : err.message;
  }
}

/** A datagram to a unix path through the native module: /dev/log, or syslog_path. */
export class UnixDatagramTransport implements Transport {
  #fd: number;
  #queue: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stream: StreamTransport | undefined;
  #health: Health;

  constructor(
    readonly unix: UnixSockets,
    readonly path: string,
    readonly kind: 'native' | 'unix',
    label: string,
    warn: (line: string) => void,
  ) {
    this.#health = new Health(label, warn);
    this.#fd = unix.datagramSocket();
    if (this.#fd < 0) this.#health.fail(`no datagram socket (${errnoName(this.#fd)})`);
  }

  send(frame: Frame): void {
    if (this.#stream) {
      this.#stream.send(frame);
      return;
    }
    if (this.#fd < 0) {
      this.#health.drop();
      return;
    }
    const data = frame(this.kind);
    // Lines wait in order behind any that the daemon had no room for.
    if (this.#queue.length > 0 || !this.#sendNow(data)) this.#enqueue(data);
  }

  /** sendNow sends one datagram; false when the daemon's queue is full (EAGAIN) and it must wait. */
  #sendNow(data: Buffer): boolean {
    const sent = this.unix.sendTo(this.#fd, this.path, data);
    if (sent === -this.unix.constants.EAGAIN) return false;
    if (sent >= 0) this.#health.ok();
    else if (sent === -constants.errno.EPROTOTYPE) {
      // A stream socket at the path: glibc and Sys::Syslog connect to it as a stream instead, and
      // end each message with a NUL there, glibc too.
      this.#stream = new StreamTransport({ path: this.path }, 'unix', this.#health);
      this.#stream.send(() => (this.kind === 'native' ? Buffer.concat([data, Buffer.of(0)]) : data));
    } else {
      this.#health.fail(
        sent === -constants.errno.ENOENT
          ? 'no such socket (ENOENT)'
          : sent === -constants.errno.ECONNREFUSED
            ? 'nothing is bound there (ECONNREFUSED)'
            : errnoName(sent),
      );
      this.#health.drop();
    }
    return true;
  }

  /** enqueue keeps a line the daemon had no room for, where syslog(3) would block, and tries again soon. */
  #enqueue(data: Buffer): void {
    if (this.#queue.length >= MAX_QUEUED) {
      this.#health.fail(`its queue is full (EAGAIN), and ${MAX_QUEUED} more lines wait`);
      this.#health.drop();
      return;
    }
    this.#queue.push(data);
    this.#timer ??= setTimeout(() => this.#retry(), RETRY_FULL_MS).unref();
  }

  #retry(): void {
    this.#timer = undefined;
    while (this.#queue.length > 0) {
      if (this.#stream) {
        for (const data of this.#queue.splice(0)) this.#stream.send(() => data);
        return;
      }
      if (!this.#sendNow(this.#queue[0]!)) {
        this.#timer = setTimeout(() => this.#retry(), RETRY_FULL_MS).unref();
        return;
      }
      this.#queue.shift();
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const data of this.#queue.splice(0)) if (this.unix.sendTo(this.#fd, this.path, data) < 0) break;
    this.#stream?.close();
    if (this.#fd >= 0) this.unix.close(this.#fd);
    this.#fd = -1;
  }
}

/** A connected udp socket to syslog_host:syslog_port. */
export class UdpTransport implements Transport {
  #socket: dgram.Socket;
  #inflight = 0;
  #closed = false;
  /** Datagrams made before connect() finished (a connecting socket takes none). */
  #early: Buffer[] | undefined = [];

  constructor(
    readonly to: { host: string; port: number },
    readonly health: Health,
  ) {
    this.#socket = dgram.createSocket(isIP(to.host) === 6 ? 'udp6' : 'udp4');
    // An ICMP port unreachable for an earlier datagram comes back as an 'error' event, as does a
    // connect() whose host name does not resolve.
    this.#socket.on('error', (err: NodeJS.ErrnoException) => health.fail(describeFailure(err)));
    this.#socket.connect(to.port, to.host, () => {
      const early = this.#early ?? [];
      this.#early = undefined;
      for (const data of early) this.#send(data);
    });
    this.#socket.unref();
  }

  send(frame: Frame): void {
    if (this.#closed) return;
    const data = frame('udp');
    if (this.#early === undefined) this.#send(data);
    else if (this.#early.length < MAX_QUEUED) this.#early.push(data);
    else this.health.drop();
  }

  #send(data: Buffer): void {
    if (this.#closed) return;
    if (this.#inflight >= MAX_QUEUED) {
      this.health.fail(`${MAX_QUEUED} datagrams wait to be sent`);
      this.health.drop();
      return;
    }
    this.#inflight++;
    this.#socket.send(data, (err) => {
      this.#inflight--;
      if (err) {
        this.health.fail(describeFailure(err));
        this.health.drop();
      } else if (this.health.down && Date.now() - this.health.failedAt > UDP_QUIET_MS) this.health.ok();
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Datagrams already handed to the socket are sent before it closes (libuv finishes its queue).
    this.#socket.close();
  }
}

/** One stream connection (tcp, or a unix stream socket), reconnected with a growing delay when it drops. */
export class StreamTransport implements Transport {
  #socket: net.Socket | undefined;
  #connected = false;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #delay = RECONNECT_MIN_MS;
  #closed = false;
  /** Called once when the first connection fails before any succeeded (inet then tries udp). */
  onFirstFailure: ((queued: Buffer[]) => void) | undefined;
  #everConnected = false;

  constructor(
    readonly to: { host: string; port: number } | { path: string },
    readonly kind: SyslogSocketKind,
    readonly health: Health,
  ) {
    this.#connect();
  }

  send(frame: Frame): void {
    if (this.#closed) return;
    const data = frame(this.kind);
    const socket = this.#socket;
    if (this.#connected && socket) {
      if (socket.writableLength > MAX_QUEUED_BYTES) {
        this.health.fail(`it does not read (${socket.writableLength} bytes wait)`);
        this.health.drop();
        return;
      }
      socket.write(data);
      return;
    }
    if (this.#queue.length >= MAX_QUEUED || this.#queuedBytes + data.length > MAX_QUEUED_BYTES) {
      this.health.drop();
      return;
    }
    this.#queue.push(data);
    this.#queuedBytes += data.length;
  }

  #connect(): void {
    this.#timer = undefined;
    const socket = net.connect(this.to);
    this.#socket = socket;
    socket.unref();
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    socket.on('connect', () => {
      this.#connected = true;
      this.#everConnected = true;
      this.#delay = RECONNECT_MIN_MS;
      this.health.ok();
      for (const data of this.#queue.splice(0)) socket.write(data);
      this.#queuedBytes = 0;
    });
    // Nothing is read: a daemon never answers, and reading keeps a peer's close from going unseen.
    socket.on('data', () => {});
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.#closed) this.health.fail(describeFailure(err));
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#connected = false;
      this.#socket = undefined;
      if (this.#closed) return;
      if (!this.#everConnected && this.onFirstFailure) {
        const queued = this.#queue.splice(0);
        this.#closed = true;
        this.onFirstFailure(queued);
        return;
      }
      if (!this.health.down) this.health.fail('the connection closed');
      this.#timer = setTimeout(() => this.#connect(), this.#delay).unref();
      this.#delay = Math.min(this.#delay * 2, RECONNECT_MAX_MS);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    // end() still sends what the socket holds; lines queued while it was down are dropped.
    if (this.#connected) this.#socket?.end();
    else this.#socket?.destroy();
  }
}

/**
 * inet is Sys::Syslog's "tcp, then udp": a tcp connection, and udp for the rest of the run once the
 * first connection fails (with what waited for it).
 */
export class InetTransport implements Transport {
  #current: Transport;

  constructor(to: { host: string; port: number }, warn: (line: string) => void) {
    const stream = new StreamTransport(to, 'tcp', new Health(`inet ${to.host}:${to.port} (tcp)`, () => {}));
    stream.onFirstFailure = (queued) => {
      const udp = new UdpTransport(to, new Health(`inet ${to.host}:${to.port} (udp)`, warn));
      this.#current = udp;
      // Framed for tcp, and the rfc3164 frames are the same over udp; rfc5424's octet count is not,
      // so those are framed again.
      for (const data of queued) udp.send(() => unframeTcp(data));
    };
    this.#current = stream;
  }

  send(frame: Frame): void {
    this.#current.send(frame);
  }

  close(): void {
    this.#current.close();
  }
}

/** unframeTcp takes RFC 6587's octet count off an RFC 5424 frame; an RFC 3164 frame (it starts with '<') is the same over udp. */
function unframeTcp(data: Buffer): Buffer {
  if (data[0] === 0x3c) return data;
  const space = data.indexOf(0x20);
  return space > 0 ? data.subarray(space + 1) : data;
}
