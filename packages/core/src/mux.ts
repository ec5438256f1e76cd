/**
 * mux — the IO::Multiplex object the mux callbacks receive: the connected clients, writes, the
 * buffers, shutdown, close, timeouts and endloop, under IO::Multiplex's names where it has one.
 */
import type { ChildProcess } from 'node:child_process';
import type dgram from 'node:dgram';
import type net from 'node:net';
import { type Client, clientControl } from './connection/client.js';
import type { InputBuffer } from './connection/input.js';
import { type ShutdownHow, shutdownSides } from './connection/shutdown.js';
import { OutputNotBufferedError } from './errors.js';
import type { Listener } from './listeners.js';

export type { ShutdownHow } from './connection/shutdown.js';

/** UdpPeer is where a UDP client's datagram came from (IO::Multiplex's udp_peer, unpacked). */
export interface UdpPeer {
  address: string;
  port: number;
}

function toBuffer(data: Buffer | Uint8Array | string): Buffer {
  // A copy: the server may reuse its own buffer after handing it over, as a Perl string is copied.
  return typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
}

/** MuxHandler is a per-handle callback object: any of the per-connection mux hooks, as methods. */
export interface MuxHandler<S = Record<string, unknown>> {
  muxInput?(mux: Mux<S>, client: Client<S>, input: InputBuffer): void | Promise<void>;
  muxOutbufferEmpty?(mux: Mux<S>, client: Client<S>): void | Promise<void>;
  muxTimeout?(mux: Mux<S>, client: Client<S>): void | Promise<void>;
  muxEof?(mux: Mux<S>, client: Client<S>, input: InputBuffer): void | Promise<void>;
  muxClose?(mux: Mux<S>, client: Client<S>): void | Promise<void>;
  /**
   * muxFreeze, on a migrating reload, returns what moves of the handle's state (JSON-serializable),
   * instead of the server's muxFreeze; by default `client.state`. Only an object of a class the
   * server registers in `static callbackClasses` moves (see CallbackClass).
   */
  muxFreeze?(mux: Mux<S>, client: Client<S>): unknown;
  /** muxThaw runs on the object made anew in the new worker, with what muxFreeze returned. */
  muxThaw?(mux: Mux<S>, client: Client<S>, state: unknown): void | Promise<void>;
}

/**
 * CallbackClass is a callback object's class as a server registers it, by name, in `static
 * callbackClasses`: on a migrating reload the new worker makes a new object of it (with no
 * arguments) for each handle whose object is an instance of it, and gives it what the old object's
 * muxFreeze returned, through muxThaw. Its closures and fields do not travel; only that data does.
 */
// biome-ignore lint/suspicious/noExplicitAny: a callback object of any state type.
export type CallbackClass = new () => MuxHandler<any>;

/** AddableHandle is what mux.add takes: a stream socket, a UDP socket, or a child process's pipes. */
export type AddableHandle = net.Socket | dgram.Socket | ChildProcess;

/** AddOptions are what the code that adds a handle gives it from the start. */
export interface AddOptions<S> {
  /** The handle's `state`, as muxConnection would set it for an accepted connection. */
  state?: S;
  /** Its callback object (see mux.setCallbackObject). */
  object?: MuxHandler<S>;
}

/** MuxTarget is what a timeout can be set on: a client or a listen socket, as in IO::Multiplex. */
export type MuxTarget<S> = Client<S> | Listener;

/** MuxHost is what the server gives the mux to act on. */
export interface MuxHost<S> {
  clients(): IterableIterator<Client<S>>;
  clientCount(): number;
  listeners(): readonly Listener[];
  setTimeout(target: MuxTarget<S>, seconds: number | null): void;
  timeoutOf(target: MuxTarget<S>): number | undefined;
  setIdleTimeout(client: Client<S>, seconds: number | null): void;
  /** shutdownRead shuts a stream connection's read side (see connection/mux-ops.ts). */
  shutdownRead(client: Client<S>): void;
  idleTimeoutOf(client: Client<S>): number | undefined;
  add(handle: AddableHandle, options: AddOptions<S> | undefined): Client<S>;
  remove(client: Client<S>): AddableHandle | undefined;
  listen(server: net.Server): Listener;
  unlisten(listener: Listener): net.Server | undefined;
  link(a: Client<S>, b: Client<S> | undefined): void;
  linked(client: Client<S>): Client<S> | undefined;
  setHandler(client: Client<S>, object: MuxHandler<S> | undefined): MuxHandler<S> | undefined;
  handlerOf(client: Client<S>): MuxHandler<S> | undefined;
  endloop(): void;
  /** Sends a broadcast on to the clients other workers serve (during a migration or a drain). */
  broadcastElsewhere(data: Buffer): void;
}

/** Mux is the multiplexer handed to every mux callback (IO::Multiplex's `$mux`). */
export class Mux<S = Record<string, unknown>> {
  readonly #host: MuxHost<S>;

  /** @internal made by the server. */
  constructor(host: MuxHost<S>) {
    this.#host = host;
  }

  /** clients iterates the connected, accepted clients (IO::Multiplex's handles, less the listeners). */
  clients(): IterableIterator<Client<S>> {
    return this.#host.clients();
  }

  /** handles is IO::Multiplex's name for clients(). */
  handles(): IterableIterator<Client<S>> {
    return this.#host.clients();
  }

  /** listeners lists the listen sockets. */
  listeners(): readonly Listener[] {
    return this.#host.listeners();
  }

  /** count is the number of connected, accepted clients. */
  get count(): number {
    return this.#host.clientCount();
  }

  /** write queues bytes for a client; false once it is closing. */
  write(client: Client<S>, data: Buffer | Uint8Array | string): boolean {
    return client.write(data);
  }

  /**
   * broadcast writes the same bytes to every connected client (or every one but `except`). Text is
   * encoded once and the one Buffer is shared, so a broadcast to many clients copies nothing per client.
   * During a reload, while the worker being replaced still has clients (a migration, or a drain), the
   * bytes also reach the clients of the other worker (each exactly once); the count returned is of
   * this worker's clients.
   */
  broadcast(data: Buffer | string, except?: Client<S>): number {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let n = 0;
    for (const c of this.#host.clients()) {
      if (c !== except && c.write(buf)) n++;
    }
    this.#host.broadcastElsewhere(buf);
    return n;
  }

  /**
   * shutdown shuts one side of a connection, or both, as IO::Multiplex's `shutdown($fh, $how)`:
   * - `1` or `'write'` (the default): the write side closes once the output written so far is sent;
   *   the client may go on sending, and later writes are refused.
   * - `0` or `'read'`: input stops. Node cannot shut a socket's read side, so netplex reads on and
   *   drops what comes; muxEof runs in the connection's turn with the input not yet consumed (and may
   *   still write), and the connection closes once its output is sent.
   * - `2` or `'both'`: both at once; muxEof still runs with the unconsumed input, but what it
   *   writes is refused.
   * For a UDP client it does nothing. A connection whose side is shut finishes in this worker: a
   * reload does not move it.
   */
  shutdown(client: Client<S>, how: ShutdownHow = 1): void {
    const sides = shutdownSides(how);
    if (sides.write) client.shutdown();
    if (sides.read) this.#host.shutdownRead(client);
  }

  /** close sends a client's queued output, then closes it. */
  close(client: Client<S>): void {
    client.close();
  }

  /** outbufLength is the number of bytes queued for a client and not yet sent (`length $mux->outbuffer($fh)`). */
  outbufLength(client: Client<S>): number {
    return client.outputLength;
  }

  /**
   * bufferOutput turns a client's buffered mode on (or, with false, off). In the default mode a
   * write goes straight to the socket, which is fastest, and what is handed to a socket cannot be
   * read back or withdrawn. In buffered mode netplex keeps the client's output and hands it to the
   * socket a slice (64 KB) at a time, the next once the socket has sent the last: `outbuffer` and
   * `killOutput` then work on all of it but the slice with the socket. Turned off, what is kept
   * goes to the socket at once. The mode moves with a migrating connection. UDP clients have no
   * buffered mode (each write is a datagram, sent at once): for them this does nothing.
   */
  bufferOutput(client: Client<S>, on = true): void {
    clientControl.setBuffered(client, on);
  }

  /**
   * outbuffer reads (IO::Multiplex's `$mux->outbuffer($fh)`) or, given `data`, replaces (`
   * $mux->outbuffer($fh, $data)`) the output written to a client and not yet handed to its socket.
   * It needs buffered mode (`bufferOutput`), and throws OutputNotBufferedError without it: in the
   * default mode the output is with the socket already. While the connection moves between workers,
   * the output held for it counts too.
   */
  outbuffer(client: Client<S>, data?: Buffer | Uint8Array | string): Buffer {
    if (data !== undefined) {
      if (!clientControl.replaceOutbuffer(client, toBuffer(data)))
        throw new OutputNotBufferedError('outbuffer', client.toString());
      return clientControl.outbuffer(client) ?? Buffer.alloc(0);
    }
    const out = clientControl.outbuffer(client);
    if (out === undefined && !clientControl.isBuffered(client))
      throw new OutputNotBufferedError('outbuffer', client.toString());
    return out ?? Buffer.alloc(0);
  }

  /**
   * killOutput drops the output written to a client and not yet handed to its socket, and leaves
   * the connection open (IO::Multiplex's kill_output). It needs buffered mode, as `outbuffer` does;
   * `client.destroy()` drops all output in any mode, and closes.
   */
  killOutput(client: Client<S>): void {
    if (!clientControl.replaceOutbuffer(client, Buffer.alloc(0)))
      throw new OutputNotBufferedError('killOutput', client.toString());
  }

  /**
   * inbuffer reads (`$mux->inbuffer($fh)`) or, given `data`, replaces (`$mux->inbuffer($fh,
   * $data)`) a client's unconsumed input: a copy of `client.input`'s bytes. Input put back this way
   * is what muxInput sees next, with the input that arrives after it.
   */
  inbuffer(client: Client<S>, data?: Buffer | Uint8Array | string): Buffer {
    if (data !== undefined) {
      client.input.clear();
      client.input.append(toBuffer(data));
    }
    return Buffer.from(client.input.bytes());
  }

  /** udpPeer is where a UDP client's datagram came from (`$mux->udp_peer($fh)`); undefined for a stream client. */
  udpPeer(client: Client<S>): UdpPeer | undefined {
    return client.proto === 'udp' ? { address: client.peeraddr, port: client.peerport } : undefined;
  }

  /** isUdp says whether a client is a UDP datagram's sender (`$mux->is_udp($fh)`). */
  isUdp(client: Client<S>): boolean {
    return client.proto === 'udp';
  }

  /**
   * setTimeout arms (or with null, clears) the one timeout of a client or listener: muxTimeout runs
   * `seconds` from now. Fractions of a second work. Setting it again replaces the previous one.
   */
  setTimeout(target: MuxTarget<S>, seconds: number | null | undefined): void {
    this.#host.setTimeout(target, seconds ?? null);
  }

  /** getTimeout is when the target's timeout fires, in ms since the epoch, or undefined. */
  getTimeout(target: MuxTarget<S>): number | undefined {
    return this.#host.timeoutOf(target);
  }

  /**
   * setIdleTimeout gives one connection its own idle limit in place of idle_timeout and restarts its
   * idle clock: if no input arrives for `seconds`, muxTimeout runs with `client.idle` true, and the
   * connection is closed after it unless muxTimeout keeps it. `null` or 0: no idle limit for this
   * connection. Called in muxTimeout for an idle expiry, it keeps the connection open. Independent of
   * `setTimeout` (each connection has both); for a UDP client it does nothing.
   */
  setIdleTimeout(client: Client<S>, seconds: number | null | undefined): void {
    this.#host.setIdleTimeout(client, seconds ?? null);
  }

  /** getIdleTimeout is when a connection's idle limit runs out if no input comes, in ms since the epoch, or undefined. */
  getIdleTimeout(client: Client<S>): number | undefined {
    return this.#host.idleTimeoutOf(client);
  }

  /**
   * add puts a stream socket the server made itself in the mux (IO::Multiplex's `$mux->add($fh)`):
   * a TCP or unix socket it connected, still connecting or connected. It returns the socket's
   * Client, served as an accepted connection is (muxInput, muxOutbufferEmpty, muxTimeout with its
   * own timer, muxEof, muxClose) except that no muxConnection runs: set what it needs here, with
   * `options.state` and `options.object`. It has a negative id, is not among `clients()` (a
   * broadcast does not reach it), and counts neither in `requests` nor against max_connections.
   * On a migrating reload a TCP or unix socket moves as an accepted connection does, unless it has a
   * callback object or is still connecting (then it finishes where it is). A socket in the mux
   * already gives its Client back. A ChildProcess spawned with stdio pipes is one handle (proto
   * 'pipe'): its stdout is the input, writes go to its stdin, and it closes when stdout does. A
   * dgram.Socket is one handle (proto 'udp'): each datagram is appended to its input, `udpPeer`
   * says where the last came from, and writes go there (or to the connected address).
   */
  add(handle: AddableHandle, options?: AddOptions<S>): Client<S> {
    return this.#host.add(handle, options);
  }

  /**
   * remove takes a handle out of the mux and hands back what was added, open (IO::Multiplex's
   * `remove`): the net.Socket (an accepted connection's too), the ChildProcess or the dgram.Socket.
   * No hook runs for it any more (muxEof and muxClose neither), its timeouts are cleared, output
   * kept for it (buffered mode) goes out, and input not consumed is put back into the stream (a
   * socket, a child's stdout), to be read first by whoever reads it next; a UDP socket's is dropped.
   * Undefined for a handle that is not in the mux, closing, or on its way to another worker.
   */
  remove(client: Client<S>): AddableHandle | undefined;
  /** remove of a listen socket added with `listen` hands its server back, still listening. */
  remove(listener: Listener): net.Server | undefined;
  remove(handle: Client<S> | Listener): AddableHandle | net.Server | undefined {
    return handle.kind === 'listener' ? this.#host.unlisten(handle) : this.#host.remove(handle);
  }

  /**
   * listen adds a listen socket at run time (IO::Multiplex's `$mux->listen($fh)`): a net.Server the
   * server made and set listening, whose connections are then served as those of a configured port
   * are (postAcceptHook, allow/deny, muxConnection, `requests`, max_connections). It returns its
   * Listener, which `listeners()` lists. The supervisor does not hold it: a reload closes it in the
   * old worker when that worker stops accepting, and a crash loses it (see writing-a-server.md).
   */
  listen(server: net.Server): Listener {
    return this.#host.listen(server);
  }

  /**
   * setCallbackObject gives one handle its own callback object (IO::Multiplex's
   * `set_callback_object($object, $fh)`): its muxInput, muxOutbufferEmpty, muxTimeout, muxEof and
   * muxClose run as that object's methods instead of the server's, and a hook the object does not
   * define is not run for it. `undefined` goes back to the server's hooks. It returns the object the
   * handle had. The server's other hooks (postProcessRequestHook, the start-up hooks) stay the server's.
   */
  setCallbackObject(client: Client<S>, object: MuxHandler<S> | undefined): MuxHandler<S> | undefined {
    return this.#host.setHandler(client, object);
  }

  /**
   * link links two handles, a client and the upstream connection it works with, say (or, with
   * `undefined` for `b`, undoes `a`'s link): each finds the other with `linked`, in whichever worker
   * serves them, and a migrating reload moves them in one step, or neither (both then drain where
   * they are), so that a proxy forwarding between them never has one end in each worker. A handle
   * has one link at most: a new one undoes the old. The link goes once either end has closed (after
   * its muxClose), or is removed.
   */
  link(a: Client<S>, b: Client<S> | undefined): void {
    this.#host.link(a, b);
  }

  /** linked is the handle `client` is linked to (see link), if it is. */
  linked(client: Client<S>): Client<S> | undefined {
    return this.#host.linked(client);
  }

  /** callbackObject is a handle's own callback object, if it has one. */
  callbackObject(client: Client<S>): MuxHandler<S> | undefined {
    return this.#host.handlerOf(client);
  }

  /** endloop stops the server: listeners close, clients are closed, and the close hooks run. */
  endloop(): void {
    this.#host.endloop();
  }
}
