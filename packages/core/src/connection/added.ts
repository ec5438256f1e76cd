/**
 * connection/added — handles the server puts in the mux itself, as IO::Multiplex's `add` and
 * `remove` do: a TCP or unix socket the server connected (an upstream, a backend), served by the
 * same client flow as an accepted connection (muxInput with its input buffer, muxOutbufferEmpty,
 * muxTimeout with its own timer, muxEof, muxClose, in the same per-handle order), and the handle's
 * own callback object (`set_callback_object($object, $fh)`).
 *
 * An added handle is no request: no muxConnection, postAcceptHook, allow/deny or
 * postProcessRequestHook runs for it, `requests` does not count it, and neither does
 * max_connections. Its id is negative (-1 for the first), so that it never shares a number with an
 * accepted connection. It is not among `mux.clients()`, so a broadcast does not reach it.
 */
import { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { unmapIPv4 } from '../access.js';
import { MuxHandleError } from '../errors.js';
import type { AddableHandle, AddOptions, MuxHandler } from '../mux.js';
import type { ServerContext } from '../server/context.js';
import { admitAdded, clientOfHandle, extraOf, remember } from './added-registry.js';
import { addDatagram } from './added-udp.js';
import { type Client, clientControl, type PeerAddresses, type Transport } from './client.js';
import type { ClientFlow } from './client-flow.js';
import { handlerHooks, isHandler } from './handler.js';
import { unlink } from './links.js';
import { kSession, markClosed, type SessionSocket } from './session.js';

/** endsOf reads a stream socket's two ends (for a unix socket, only that it is one). */
function endsOf(socket: net.Socket): PeerAddresses {
  if (socket.remoteAddress === undefined)
    return { proto: 'unix', peeraddr: '', peerport: 0, sockaddr: '', sockport: 0 };
  return {
    proto: 'tcp',
    peeraddr: unmapIPv4(socket.remoteAddress),
    peerport: socket.remotePort ?? 0,
    sockaddr: unmapIPv4(socket.localAddress ?? ''),
    sockport: socket.localPort ?? 0,
  };
}

/**
 * addSocket puts a stream socket the server made in the mux and returns its Client. A socket still
 * connecting is served at once (what is written waits for the connection); its addresses are filled
 * in when it connects. A socket in the mux already gives its Client back.
 */
export function addSocket<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  socket: AddableHandle,
  options: AddOptions<S> = {},
): Client<S> {
  if (socket instanceof ChildProcess) return addChild(ctx, flow, socket, options);
  if (socket instanceof dgram.Socket) {
    const found = clientOfHandle(ctx, socket);
    if (found) return found;
    if (ctx.state !== 'running' && ctx.state !== 'starting')
      throw new MuxHandleError('add', `the server is ${ctx.state}, and takes no handle`);
    const client = addDatagram(ctx, flow, socket, -++ctx.addedCount, options, (c) =>
      setHandler(ctx, flow, c, options.object),
    );
    logAdded(ctx, client);
    return client;
  }
  if (!(socket instanceof net.Socket))
    throw new MuxHandleError(
      'add',
      `takes a net.Socket (a TCP or unix stream), a dgram.Socket or a ChildProcess with stdin and stdout pipes, got ${describe(socket)}`,
    );
  const existing = (socket as Partial<SessionSocket<S>>)[kSession];
  if (existing !== undefined && ctx.sessions.get(existing.client) === existing) return existing.client;
  if (socket.destroyed) throw new MuxHandleError('add', 'the socket is closed already');
  if (ctx.state !== 'running' && ctx.state !== 'starting')
    throw new MuxHandleError('add', `the server is ${ctx.state}, and takes no handle`);
  const id = -++ctx.addedCount;
  const connecting = socket.connecting;
  const ends: PeerAddresses = connecting
    ? { proto: 'tcp', peeraddr: '', peerport: 0, sockaddr: '', sockport: 0 }
    : endsOf(socket);
  const session = flow.createSession(socket, { id, ...ends, listener: '' });
  const { client } = session;
  // Its end of input ends nothing else: the server ends its output when it is done with it.
  socket.allowHalfOpen = true;
  admitAdded(ctx, client, options, true, (c) => setHandler(ctx, flow, c, options.object));
  if (connecting)
    socket.once('connect', () => {
      clientControl.setAddresses(client, endsOf(socket));
      logAdded(ctx, client);
    });
  else logAdded(ctx, client);
  return client;
}

/**
 * PipeTransport writes to a child's stdin; its stdout is what the client flow reads. Ending the
 * handle ends stdin (the child sees the end of its input); closing it also stops reading stdout.
 */
class PipeTransport implements Transport {
  constructor(
    readonly stdin: net.Socket,
    readonly stdout: net.Socket,
  ) {}
  write(data: Buffer, done?: (err?: Error | null) => void): void {
    this.stdin.write(data, done);
  }
  end(): void {
    this.stdin.end();
  }
  close(): void {
    const { stdin, stdout } = this;
    if (stdin.writableFinished || stdin.destroyed) stdout.destroy();
    else {
      stdin.once('finish', () => stdout.destroy());
      stdin.end();
    }
  }
  destroy(): void {
    this.stdin.destroy();
    this.stdout.destroy();
  }
  get writableLength(): number {
    return this.stdin.writableLength;
  }
}

/**
 * addChild puts a child process's pipes in the mux as one handle: what it writes to stdout is the
 * handle's input, what the server writes goes to its stdin. Its stderr is left to the caller. The
 * handle closes when stdout does (the child closed it, or exited), and its stdin is ended then.
 */
function addChild<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  child: ChildProcess,
  options: AddOptions<S>,
): Client<S> {
  const { stdin, stdout } = child;
  if (!(stdin instanceof net.Socket) || !(stdout instanceof net.Socket))
    throw new MuxHandleError(
      'add',
      "the child process needs stdin and stdout pipes: spawn it with stdio 'pipe'",
    );
  const existing = (stdout as Partial<SessionSocket<S>>)[kSession];
  if (existing !== undefined && ctx.sessions.get(existing.client) === existing) return existing.client;
  if (stdout.destroyed) throw new MuxHandleError('add', "the child's stdout is closed already");
  if (ctx.state !== 'running' && ctx.state !== 'starting')
    throw new MuxHandleError('add', `the server is ${ctx.state}, and takes no handle`);
  const id = -++ctx.addedCount;
  const transport = new PipeTransport(stdin, stdout);
  const ends: PeerAddresses = {
    proto: 'pipe',
    peeraddr: '',
    peerport: child.pid ?? 0,
    sockaddr: '',
    sockport: 0,
  };
  const session = flow.createSession(stdout, { id, ...ends, listener: '' }, transport);
  const { client } = session;
  // A child that exits while netplex writes to it: the write fails (EPIPE), and the handle ends.
  stdin.on('error', (err: NodeJS.ErrnoException) => {
    ctx.log(3, `client ${client}: stdin: ${err.code ?? err.message}`, {
      conn: client.id,
      err: err.code ?? err.message,
    });
  });
  stdout.once('close', () => {
    if (!stdin.destroyed) stdin.end();
  });
  remember(client, {
    handle: child,
    detach: (unread) => {
      flow.detach(session);
      stdout.pause();
      if (unread.length > 0) stdout.unshift(unread);
    },
  });
  // A child process does not move on a reload: it finishes in its worker.
  admitAdded(ctx, client, options, false, (c) => setHandler(ctx, flow, c, options.object));
  logAdded(ctx, client);
  return client;
}

function logAdded<S>(ctx: ServerContext<S>, client: Client<S>): void {
  if (ctx.config.log_level >= 3)
    ctx.log(3, `ADD ${client.proto.toUpperCase()} client ${client}`, {
      conn: client.id,
      peer: client.peeraddr,
      peerport: client.peerport,
    });
}

/**
 * removeHandle takes a handle out of the mux and hands its socket back, open, as IO::Multiplex's
 * `remove` leaves the handle to its caller: no further hook runs for it (muxEof and muxClose
 * neither), its timeouts are cleared, output kept for it goes to the socket, and input not consumed
 * is put back into the socket, to be read first. Undefined for a handle not in the mux (closed, or
 * on its way to another worker).
 */
export function removeHandle<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  client: Client<S>,
): AddableHandle | undefined {
  const session = ctx.sessions.get(client);
  if (!session) return undefined;
  const extra = extraOf(client);
  const socket = session.socket;
  if (!extra && !socket) return undefined;
  const phase = client.phase;
  if (phase === 'migrating' || phase === 'closing' || phase === 'closed') return undefined;
  clientControl.setBuffered(client, false);
  session.queue.length = 0;
  session.inputQueued = false;
  const unread = client.input.takeAll();
  if (extra) extra.detach(unread);
  else {
    flow.detach(session);
    socket!.pause();
    if (unread.length > 0) socket!.unshift(unread);
  }
  clientControl.setPhase(client, 'closed');
  ctx.sessions.delete(client);
  ctx.clients.delete(client);
  ctx.added.delete(client);
  if (ctx.adopted.size > 0) ctx.adopted.delete(client.id);
  ctx.timeouts.clear(client);
  ctx.idle.stop(session);
  unlink(ctx, client);
  if (socket) delete (socket as Partial<SessionSocket<S>>)[kSession];
  markClosed(session);
  if (ctx.sessions.size === 0) ctx.onIdle?.();
  return (extra?.handle as AddableHandle | undefined) ?? socket;
}

/**
 * setHandler gives a handle its own callback object (undefined: back to the server's hooks) and
 * returns the one it had, as IO::Multiplex's set_callback_object does.
 */
export function setHandler<S>(
  ctx: ServerContext<S>,
  flow: ClientFlow<S>,
  client: Client<S>,
  object: MuxHandler<S> | undefined,
): MuxHandler<S> | undefined {
  if (object !== undefined && !isHandler(object))
    throw new MuxHandleError('setCallbackObject', `takes an object with mux hooks, got ${describe(object)}`);
  const session = ctx.sessions.get(client);
  if (!session) throw new MuxHandleError('setCallbackObject', `client ${client} is not in the mux`);
  const old = session.handler;
  session.handler = object;
  if (object !== undefined) {
    const defined = handlerHooks.filter((h) => typeof object[h] === 'function');
    if (defined.length === 0)
      ctx.log(
        1,
        `setCallbackObject: the object for client ${client} has none of ${handlerHooks.join(', ')}`,
        {
          conn: client.id,
        },
      );
    if (typeof object.muxOutbufferEmpty === 'function') flow.watchOutput(client);
  }
  return old;
}

/** handlerOf is a handle's own callback object, if it has one. */
export function handlerOf<S>(ctx: ServerContext<S>, client: Client<S>): MuxHandler<S> | undefined {
  return ctx.sessions.get(client)?.handler;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return value.constructor?.name ?? 'an object';
}
