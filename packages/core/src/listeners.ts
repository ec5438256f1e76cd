/**
 * listeners — the listen sockets of one server: bound here (in-process) or adopted from the
 * supervisor, which bound them first and passes their handles over IPC.
 */
import dgram from 'node:dgram';
import { existsSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import { loadUnix, READABLE, type UnixSockets, unixUnavailable, type Watcher } from '@netplex/unix';
import { BindError } from './errors.js';
import { type BindTarget, formatBindTarget } from './port-spec.js';

/** ListenerAddress is where a listener is bound, once it is. */
export type ListenerAddress =
  | { proto: 'tcp' | 'udp'; address: string; port: number; family: 4 | 6 }
  | { proto: 'unix'; path: string };

/** Listener is one listen socket; a hook that handles listen-socket timeouts receives it. */
export class Listener {
  /** kind tells a Listener from a Client where a hook receives either. */
  readonly kind = 'listener' as const;
  readonly target: BindTarget;
  /** label names the listener in logs, e.g. `127.0.0.1:20203/tcp`, updated with the real port once bound. */
  label: string;
  /** @internal the stream server, for tcp and unix. */
  server: net.Server | undefined;
  /** @internal the datagram socket, for udp. */
  socket: dgram.Socket | undefined;
  /** @internal the unix datagram socket, for unixdgram (bound through the native module). */
  datagram: UnixDatagramSocket | undefined;
  /**
   * @internal A handle the supervisor passed that this listener will accept on once the loop starts
   * (see adoptListener's `defer`); until then the address is read from the handle itself.
   */
  pending: unknown;

  /** @internal Listeners are made by the server. */
  constructor(target: BindTarget) {
    this.target = target;
    this.label = formatBindTarget(target);
  }

  /** proto is the listener's protocol. */
  get proto(): 'tcp' | 'udp' | 'unix' {
    return this.target.proto === 'unixdgram' ? 'unix' : this.target.proto;
  }

  /** address is where the listener is bound: the real port when the spec asked for port 0. */
  address(): ListenerAddress | undefined {
    if (this.socket) {
      const a = this.socket.address();
      return { proto: 'udp', address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
    }
    if ('path' in this.target)
      return this.server || this.pending || this.datagram
        ? { proto: 'unix', path: this.target.path }
        : undefined;
    const a = this.server ? this.server.address() : handleAddress(this.pending);
    if (!a || typeof a === 'string') return undefined;
    return { proto: 'tcp', address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
  }

  /**
   * @internal The local address of every connection this listener accepts, when it is bound to one
   * address: a connection's getsockname() would only repeat it. Undefined for a wildcard address
   * (0.0.0.0, ::), where each connection has its own.
   */
  localAddress: { address: string; port: number } | undefined;

  /** @internal refresh the label with the real address once bound. */
  updateLabel(): void {
    const a = this.address();
    if (a) this.label = formatBindTarget(a);
    this.localAddress =
      a && a.proto === 'tcp' && a.address !== '0.0.0.0' && a.address !== '::'
        ? { address: a.address, port: a.port }
        : undefined;
  }
}

/** createStreamServer makes the net.Server every tcp and unix listener uses. */
export function createStreamServer(onConnection: (socket: net.Socket) => void): net.Server {
  // allowHalfOpen: a client that stops writing still gets its answers; muxEof runs, then netplex
  // shuts the write side down itself, as Net::Server::Multiplex does after mux_eof.
  return net.createServer({ allowHalfOpen: true }, onConnection);
}

/**
 * bindListener binds one target and resolves once it listens. A unix socket path left by a dead
 * server is replaced; one that a live server answers on is a BindError.
 */
export async function bindListener(
  listener: Listener,
  opts: {
    backlog: number;
    onConnection: (socket: net.Socket) => void;
    onDatagram: (msg: Buffer, rinfo: dgram.RemoteInfo) => void;
    /** Takes each datagram of a unixdgram port, with its sender's path (undefined for an unbound sender). */
    onUnixDatagram?: (msg: Buffer, from: string | undefined) => void;
    /** Share a udp port with the worker being replaced (a reload), which still holds it. */
    reuseAddr?: boolean;
    /** Let a udp socket send to broadcast addresses (SO_BROADCAST, Net::Server's udp_broadcast). */
    broadcast?: boolean;
  },
): Promise<void> {
  const t = listener.target;
  if (t.proto === 'udp') {
    if (!('address' in t)) throw new BindError(listener.label, 'udp needs an address and a port');
    const socket = dgram.createSocket({
      type: t.family === 6 ? 'udp6' : 'udp4',
      ipv6Only: t.ipv6Only ?? false,
      reuseAddr: opts.reuseAddr ?? false,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => reject(new BindError(listener.label, err.message, { cause: err })));
      socket.bind({ address: t.address, port: t.port, exclusive: !opts.reuseAddr }, () => resolve());
    });
    // SO_BROADCAST can only be set on a bound socket.
    if (opts.broadcast) socket.setBroadcast(true);
    socket.on('message', opts.onDatagram);
    listener.socket = socket;
    listener.updateLabel();
    return;
  }
  if (t.proto === 'unixdgram') {
    // The label stays the target's (PATH|unixdgram): the address, { proto: 'unix', path }, would lose the type.
    bindUnixDatagram(listener, t.path, opts.onUnixDatagram ?? (() => {}));
    return;
  }
  const server = createStreamServer(opts.onConnection);
  if ('path' in t) {
    await removeStaleUnixSocket(t.path, listener.label);
    await listen(server, listener.label, { path: t.path, backlog: opts.backlog });
  } else {
    await listen(server, listener.label, {
      host: t.address,
      port: t.port,
      backlog: opts.backlog,
      ipv6Only: t.ipv6Only ?? false,
      exclusive: true,
    });
  }
  listener.server = server;
  listener.updateLabel();
}

/**
 * adoptListener makes a listener serve a handle the supervisor bound and passed over IPC. With
 * `defer`, it only checks the handle and keeps it: the listener accepts once startAccepting() is
 * called (a worker that starts while another one still accepts on the same socket takes no
 * connection before it is ready, so that a failed start harms none).
 */
export async function adoptListener(
  listener: Listener,
  handle: unknown,
  opts: { onConnection: (socket: net.Socket) => void; backlog?: number; defer?: boolean },
): Promise<void> {
  if (opts.defer) {
    listener.pending = handle;
    const bound = listener.address();
    if (!bound) {
      listener.pending = undefined;
      throw new BindError(listener.label, 'the passed socket has no address');
    }
    checkPassedPort(listener, bound);
    listener.updateLabel();
    return;
  }
  const server = createStreamServer(opts.onConnection);
  await listen(server, listener.label, handle as net.ListenOptions, opts.backlog);
  listener.server = server;
  listener.pending = undefined;
  const bound = listener.address();
  if (bound) {
    try {
      checkPassedPort(listener, bound);
    } catch (err) {
      server.close();
      listener.server = undefined;
      throw err;
    }
  }
  listener.updateLabel();
}

/** startAccepting makes a listener whose adoption was deferred accept on its handle. */
export async function startAccepting(
  listener: Listener,
  opts: { onConnection: (socket: net.Socket) => void; backlog?: number },
): Promise<void> {
  const handle = listener.pending;
  if (handle === undefined) return;
  await adoptListener(listener, handle, opts);
}

/** A socket whose bind failed would listen on a random port: never serve on an address nobody asked for. */
function checkPassedPort(listener: Listener, bound: ListenerAddress): void {
  const t = listener.target;
  if ('port' in t && t.port !== 0 && 'port' in bound && bound.port !== t.port)
    throw new BindError(listener.label, `the passed socket listens on port ${bound.port}, not ${t.port}`);
}

/** handleAddress reads a passed tcp handle's address (libuv's getsockname), before anything listens on it. */
function handleAddress(handle: unknown): net.AddressInfo | undefined {
  const h = handle as { getsockname?: (out: Record<string, unknown>) => number } | undefined;
  const out: Record<string, unknown> = {};
  if (typeof h?.getsockname !== 'function' || h.getsockname(out) !== 0) return undefined;
  if (typeof out.address !== 'string' || typeof out.port !== 'number') return undefined;
  return { address: out.address, port: out.port, family: out.family === 'IPv6' ? 'IPv6' : 'IPv4' };
}

/** closeListener stops accepting; live connections are not touched. */
export async function closeListener(listener: Listener): Promise<void> {
  const { server, socket, datagram } = listener;
  listener.server = undefined;
  listener.socket = undefined;
  listener.datagram = undefined;
  listener.pending = undefined;
  if (datagram) closeUnixDatagram(datagram);
  if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  // server.close() stops accepting at once; its callback would wait for every connection to end,
  // which is the caller's business (drain or close), so it is not awaited.
  server?.close();
}

function listen(
  server: net.Server,
  label: string,
  options: net.ListenOptions | object,
  backlog?: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new BindError(label, describeBindError(err.code, err.message), { cause: err }));
    };
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve();
    };
    // A passed handle takes its backlog as the second argument (options carry their own).
    if (backlog === undefined) server.listen(options, done);
    else server.listen(options as net.ListenOptions, backlog, done);
  });
}

/** describeBindError says why a bind failed, for the errno codes a server operator meets. */
export function describeBindError(code: string | undefined, fallback: string): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'address already in use (another server is listening there)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need root, or CAP_NET_BIND_SERVICE)';
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine';
    default:
      return fallback;
  }
}

/** removeStaleUnixSocket removes a socket file no server answers on; a live one is a BindError. */
export async function removeStaleUnixSocket(path: string, label: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new BindError(label, `${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new BindError(label, `a running server is listening on ${path}`);
  unlinkSync(path);
}

/** UnixDatagramSocket is a bound unixdgram listener's socket. */
export interface UnixDatagramSocket {
  readonly unix: UnixSockets;
  readonly fd: number;
  readonly path: string;
  readonly watcher: Watcher;
  /** The inode bound at `path`, so that a close unlinks only its own (not a newer worker's). */
  readonly ino: number;
}

/** The largest datagram read whole: a unix datagram is at most the sender's SO_SNDBUF (212992 by default on Linux). */
const RECEIVE_BUFFER = 256 * 1024;
/** Datagrams read per readiness callback, so that a flood on one socket does not starve the loop. */
const READ_BATCH = 64;

/** errnoName names a negative errno from the native module (EADDRINUSE, …). */
export function errnoName(result: number): string {
  return Object.entries(constants.errno).find(([, n]) => n === -result)?.[0] ?? `errno ${-result}`;
}

/**
 * bindUnixDatagram binds a unixdgram listener and calls `onDatagram` with each datagram and its
 * sender's path (undefined for an unbound sender). A file left at the path is removed first, as
 * Net::Server::Proto::UNIXDGRAM does; one that is not a socket is a BindError.
 */
export function bindUnixDatagram(
  listener: Listener,
  path: string,
  onDatagram: (msg: Buffer, from: string | undefined) => void,
): void {
  const unix = loadUnix();
  if (unix === undefined)
    throw new BindError(
      listener.label,
      `unixdgram sockets need netplex's native module (Node's net and dgram modules have none), which is not available: ${unixUnavailable()}`,
    );
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket())
      throw new BindError(listener.label, `${path} exists and is not a socket`);
    // A datagram socket tells no one whether a process still reads it; Net::Server unlinks it too.
    // Under the supervisor this is how a new worker takes the path over from the one it replaces.
    unlinkSync(path);
  }
  const fd = unix.bindDatagram(path);
  if (fd < 0) throw new BindError(listener.label, `bind ${path}: ${errnoName(fd)}`);
  const buffer = Buffer.alloc(RECEIVE_BUFFER);
  const watcher = unix.watch(fd, READABLE, (events) => {
    if (events < 0) return;
    for (let i = 0; i < READ_BATCH; i++) {
      const got = unix.receive(fd, buffer);
      if (typeof got === 'number') return;
      onDatagram(Buffer.from(buffer.subarray(0, got.bytes)), got.from);
    }
  });
  // The socket file's inode (an fstat of the descriptor would give the socket's, not the file's).
  listener.datagram = { unix, fd, path, watcher, ino: statSync(path).ino };
}

/** closeUnixDatagram stops reading, closes the socket and unlinks the path if it is still this socket's. */
export function closeUnixDatagram(socket: UnixDatagramSocket): void {
  socket.watcher.close();
  socket.unix.close(socket.fd);
  try {
    if (statSync(socket.path).ino === socket.ino) unlinkSync(socket.path);
  } catch {
    // Gone already, or replaced by another server's socket: nothing of this one's to remove.
  }
}
