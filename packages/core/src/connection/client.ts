/**
 * client — the per-connection object every mux callback receives.
 *
 * It plays the part of Net::Server::Multiplex's client-specific callback object: the peer's
 * addresses, the `requests` counter as `id`, the connect time, the server's own typed `state`, and
 * `print`/`write` that go to this client (the seed's "STDOUT tied to the client").
 */
import type { Logger } from 'pino';
import { InputBuffer } from './input.js';
import { OutputBuffer } from './output-buffer.js';
import { type ConnectionEnd, NOTHING, OutputHold } from './output-hold.js';

export type { ConnectionEnd } from './output-hold.js';

/** Transport is what a Client writes to: a TCP or unix stream, or a UDP peer. */
export interface Transport {
  /** write queues bytes; `done` (when given) runs once they are handed to the kernel, or fail. */
  write(data: Buffer, done?: (err?: Error | null) => void): void;
  /** end closes the write side once queued output is flushed; the peer may go on sending. */
  end(): void;
  /** close flushes queued output, then closes both directions. */
  close(): void;
  /** destroy closes at once, dropping queued output. */
  destroy(): void;
  /** Bytes written but not yet handed to the kernel. */
  readonly writableLength: number;
}

/**
 * ClientProto is how a client is reached: a TCP or unix stream, a UDP datagram's sender, or (for a
 * child process added with mux.add) its stdin and stdout pipes.
 */
export type ClientProto = 'tcp' | 'udp' | 'unix' | 'pipe';

/** ClientInfo is what netplex learns about a peer when it connects (Net::Server's get_client_info). */
export interface ClientInfo {
  id: number;
  proto: ClientProto;
  peeraddr: string;
  peerport: number;
  sockaddr: string;
  sockport: number;
  /** The listener's label, e.g. `127.0.0.1:20203/tcp`. */
  listener: string;
  /** When the connection was accepted (kept across a migration); now by default. */
  connectedAt?: Date;
}

/** PeerAddresses are a stream's two ends, as a Client shows them. */
export type PeerAddresses = Pick<ClientInfo, 'proto' | 'peeraddr' | 'peerport' | 'sockaddr' | 'sockport'>;

/** ClientPhase is where a connection is in the client flow. */
export type ClientPhase = 'accepting' | 'connected' | 'eof' | 'migrating' | 'closing' | 'closed';

/**
 * ClientControl is what netplex's own parts do to a client and user code cannot: set its phase, and
 * hold and release its output while it moves between workers. It is not exported from the package.
 */
export interface ClientControl {
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  setPhase(client: Client<any>, phase: ClientPhase): void;
  /** holdOutput keeps what is written here until releaseOutput (a connection that migrated in). */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  holdOutput(client: Client<any>): void;
  /** releaseOutput: see Client's #releaseOutput. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  releaseOutput(client: Client<any>, first: Buffer, end?: ConnectionEnd): void;
  /** endedWhileMoving is how the connection was ended while on its way, if it was. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  endedWhileMoving(client: Client<any>): ConnectionEnd | undefined;
  /** takeEndWhileMoving returns (and forgets) that, for the worker that serves it next. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  takeEndWhileMoving(client: Client<any>): ConnectionEnd | undefined;
  /** setIdle marks a client whose idle limit has passed (or, with false, that it has input again). */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  setIdle(client: Client<any>, idle: boolean): void;
  /**
   * watchOutput has `emptied` told whenever everything written to the client so far has been
   * handed to the kernel (muxOutbufferEmpty); only for a server that defines that hook.
   */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  watchOutput(client: Client<any>, emptied: (client: Client<any>) => void): void;
  /** setBuffered turns buffered mode (output-buffer.ts) on or off; a UDP client has none. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  setBuffered(client: Client<any>, on: boolean): void;
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  isBuffered(client: Client<any>): boolean;
  /**
   * outbuffer is the output netplex keeps for the client and has not handed to the socket: in
   * buffered mode, and while the connection moves between workers. Undefined for a client in the
   * default mode (its output is with the socket, and cannot be read back).
   */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  outbuffer(client: Client<any>): Buffer | undefined;
  /** replaceOutbuffer puts `data` in place of that output (empty: drops it); false in the default mode. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  replaceOutbuffer(client: Client<any>, data: Buffer): boolean;
  /** takeHeldOutput returns (and forgets) what was written while the connection was moving. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  takeHeldOutput(client: Client<any>): Buffer;
  /** setAddresses fills in the two ends of an added socket once it has connected. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  setAddresses(client: Client<any>, ends: PeerAddresses): void;
  /** restoreHeld puts output taken with takeHeldOutput back, first, for a connection that stays. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  restoreHeld(client: Client<any>, output: Buffer): void;
}

/** clientControl is set once, by Client's static block, which alone can reach a client's private fields. */
export let clientControl: ClientControl;

/** Client is one connection (or, for UDP, one datagram's sender) and the server's state for it. */
export class Client<S = Record<string, unknown>> {
  /** kind tells a Client from a Listener where a hook receives either. */
  readonly kind = 'client' as const;
  /** id is the connection number, Net::Server's `requests` counter: 1 for the first client. */
  readonly id: number;
  /** proto is how the client is reached; 'pipe' for a child process added with mux.add. */
  readonly proto: ClientProto;
  /** peeraddr is the client's address; an IPv4 client of a dual-stack socket shows plain IPv4. */
  readonly peeraddr: string;
  readonly peerport: number;
  readonly sockaddr: string;
  readonly sockport: number;
  /** listener is the label of the listen socket the client came through ('' for an added handle). */
  readonly listener: string;
  /** peerhost is the client's host name, when reverse_lookups found one. */
  peerhost: string | undefined;
  /** connectedAt is when the connection was accepted. */
  readonly connectedAt: Date;
  /** accepted is false for a client that allow_deny refused: Perl's common listen-socket object. */
  accepted = false;
  /** state is the server's own per-client data; set it in muxConnection. */
  state: S = {} as S;
  /** input is the unconsumed input; muxInput consumes from its left. */
  readonly input = new InputBuffer();
  readonly #rootLog: Logger;
  #log: Logger | undefined;
  #phase: ClientPhase = 'accepting';

  readonly #transport: Transport;
  readonly #onWrite: (client: Client<S>) => void;
  /** Buffered mode's output (output-buffer.ts); undefined in the default mode. */
  #out: OutputBuffer | undefined;
  /** The write side is shut (shutdown, or eof handled): later writes are refused. */
  #writeShut = false;
  /** muxOutbufferEmpty's notice, and the write callback that gives it (see watchOutput). */
  #emptied: ((client: Client<S>) => void) | undefined;
  #afterWrite: ((err?: Error | null) => void) | undefined;
  /** Something was written since the last notice. */
  #emptyArmed = false;

  /** @internal Clients are made by the server, never by user code. */
  constructor(info: ClientInfo, transport: Transport, log: Logger, onWrite: (client: Client<S>) => void) {
    this.id = info.id;
    this.proto = info.proto;
    this.peeraddr = info.peeraddr;
    this.peerport = info.peerport;
    this.sockaddr = info.sockaddr;
    this.sockport = info.sockport;
    this.listener = info.listener;
    this.connectedAt = info.connectedAt ?? new Date();
    this.#transport = transport;
    this.#rootLog = log;
    this.#onWrite = onWrite;
  }

  /**
   * log is a child logger bound to this connection's id and peer (`{ conn, peer }`), made on first
   * use so that idle connections cost no logger.
   */
  get log(): Logger {
    this.#log ??= this.#rootLog.child({ conn: this.id, peer: this.peeraddr });
    return this.#log;
  }

  /**
   * movable says whether a reload may move this connection to the new worker (reload_mode migrate);
   * set it to false for a connection that must finish on the code that started it (it is drained).
   */
  movable = true;

  /**
   * allowHalfOpen, when true, keeps netplex's side of the connection open for writing after the
   * client has ended its own: after muxEof, netplex does not shut its write side (as it does by
   * default, like Net::Server::Multiplex), and the server ends it with `shutdown()` or `close()`.
   * A proxy sets it, so that answers to what came before the end still reach the client. It is true
   * for a handle added with `mux.add`, which the server ends itself.
   */
  declare allowHalfOpen: boolean;

  /**
   * added is true for a handle the server added itself with `mux.add` (a socket it connected, a
   * child process, a UDP socket), not accepted from a listener: no muxConnection runs for it, and it
   * is no request. Its id is negative, which is what says so.
   */
  get added(): boolean {
    return this.id < 0;
  }

  /** While the connection moves between workers: its held output and pending end (see OutputHold). */
  #hold: OutputHold | undefined;

  #idle = false;

  /**
   * idle is true when the connection has received no input for its idle limit (idle_timeout, or
   * what `mux.setIdleTimeout` set): muxTimeout runs with it true, and the connection is closed once
   * muxTimeout returns unless input arrived meanwhile or the server called `mux.setIdleTimeout`.
   * It is false when muxTimeout runs for a timeout set with `mux.setTimeout`.
   */
  get idle(): boolean {
    return this.#idle;
  }

  /** phase is where the connection is in its life. */
  get phase(): ClientPhase {
    return this.#phase;
  }

  /** open is true until the connection starts closing; writes after that are dropped. */
  get open(): boolean {
    switch (this.#phase) {
      case 'accepting':
      case 'connected':
      case 'eof':
        return true;
      case 'migrating': {
        const end = this.#hold?.endWhileMoving;
        return end === undefined || end === 'shutdown';
      }
      default:
        return false;
    }
  }

  static {
    // On the prototype: a connection that never sets it costs no field for it.
    Client.prototype.allowHalfOpen = false;
    clientControl = {
      setPhase: (client, phase) => {
        client.#phase = phase;
        // Frozen to move: what buffered mode kept goes with the connection, ahead of what is held.
        const out = client.#out;
        if (phase === 'migrating' && out !== undefined && out.length > 0)
          client.#holdOf().unshift(out.take());
      },
      setIdle: (client, idle) => {
        client.#idle = idle;
      },
      holdOutput: (client) => {
        client.#holdOf().waiting = {};
      },
      releaseOutput: (client, first, end) => client.#releaseOutput(first, end),
      endedWhileMoving: (client) => client.#hold?.endWhileMoving,
      takeEndWhileMoving: (client) => {
        const end = client.#hold?.takeEnd();
        client.#dropIdleHold();
        return end;
      },
      takeHeldOutput: (client) => {
        const out = client.#hold?.takeHeld() ?? NOTHING;
        client.#dropIdleHold();
        return out;
      },
      setAddresses: (client, ends) => {
        const c = client as { -readonly [K in keyof PeerAddresses]: PeerAddresses[K] };
        c.proto = ends.proto;
        c.peeraddr = ends.peeraddr;
        c.peerport = ends.peerport;
        c.sockaddr = ends.sockaddr;
        c.sockport = ends.sockport;
      },
      restoreHeld: (client, output) => {
        if (output.length > 0) client.#holdOf().unshift(output);
      },
      watchOutput: (client, emptied) => {
        client.#emptied = emptied;
        client.#afterWrite = (err) => {
          if (err || !client.#emptyArmed || client.outputLength > 0) return;
          client.#emptyArmed = false;
          emptied(client);
        };
      },
      setBuffered: (client, on) => client.#setBuffered(on),
      isBuffered: (client) => client.#out !== undefined,
      outbuffer: (client) => {
        const out = client.#out;
        const held = client.#hold?.held;
        if (out === undefined && held === undefined) return undefined;
        const parts = held ? [...held] : [];
        if (out && out.length > 0) parts.push(out.peek());
        return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      },
      replaceOutbuffer: (client, data) => {
        const out = client.#out;
        const hold = client.#hold;
        if (out === undefined && hold?.held === undefined) return false;
        // Held output (the connection is moving) goes with the connection; the rest stays here.
        if (hold?.held !== undefined && (client.#phase === 'migrating' || hold.waiting)) {
          hold.held = data.length > 0 ? [data] : undefined;
          out?.replace(NOTHING);
        } else {
          if (hold) hold.held = undefined;
          out?.replace(data);
        }
        return true;
      },
    };
  }

  #setBuffered(on: boolean): void {
    if (this.proto === 'udp' || on === (this.#out !== undefined)) return;
    if (on) {
      this.#out = new OutputBuffer(this.#transport, {
        paused: () => this.#phase === 'migrating' || this.#phase === 'closed',
        sent: () => {
          if (this.#emptied === undefined || this.#transport.writableLength > 0) return;
          this.#emptyArmed = false;
          this.#emptied(this);
        },
      });
      return;
    }
    // Back to the default mode: what is kept goes to the socket now, in order.
    const { rest, end } = this.#out!.stop();
    this.#out = undefined;
    if (rest.length > 0) this.#direct(rest);
    if (end === 'close') this.#transport.close();
    else if (end === 'end') this.#transport.end();
  }

  /** send hands bytes on: kept (buffered mode) or to the socket. */
  #send(buf: Buffer): void {
    const out = this.#out;
    if (out === undefined) this.#direct(buf);
    else {
      this.#emptyArmed = true;
      out.send(buf);
    }
  }

  #direct(buf: Buffer): void {
    if (this.#afterWrite === undefined) this.#transport.write(buf);
    else {
      this.#emptyArmed = true;
      this.#transport.write(buf, this.#afterWrite);
    }
  }

  /** endWhenSent ends the write side (or with 'close' both) once buffered output, if any, is sent. */
  #endWhenSent(how: 'end' | 'close'): void {
    if (this.#out?.endWhenSent(how)) return;
    if (how === 'close') this.#transport.close();
    else this.#transport.end();
  }

  #holdOf(): OutputHold {
    this.#hold ??= new OutputHold();
    return this.#hold;
  }

  #dropIdleHold(): void {
    if (this.#hold?.idle) this.#hold = undefined;
  }

  /**
   * releaseOutput sends `first` (what the old worker wrote to this connection while it was on its
   * way), then what was written here meanwhile, then a close or shutdown asked for meanwhile.
   * `end` is how the old worker ended the connection after `first`, if it did: what was written here
   * came after that, so it is dropped, as a write after close is.
   */
  #releaseOutput(first: Buffer, end: ConnectionEnd | undefined): void {
    const hold = this.#hold;
    const waiting = hold?.waiting;
    if (!hold || !waiting) return;
    hold.waiting = undefined;
    if (this.#phase === 'closed') {
      this.#dropIdleHold();
      return;
    }
    if (end === 'destroy') {
      this.destroy();
      return;
    }
    const held = end ? NOTHING : hold.takeHeld();
    hold.held = undefined;
    this.#dropIdleHold();
    if (first.length > 0) this.#send(first);
    if (held.length > 0) this.#send(held);
    if (first.length > 0 || held.length > 0) this.#onWrite(this);
    if (end === 'close' || waiting.after === 'close') {
      if (this.open) this.#phase = 'closing';
      this.#endWhenSent('close');
    } else if (end === 'shutdown' || waiting.after === 'shutdown') {
      this.#writeShut = true;
      this.#endWhenSent('end');
      this.movable = false;
    }
  }

  /**
   * outputLength is the number of bytes written to this client and not yet handed to the kernel:
   * with the socket, and in buffered mode kept by netplex.
   */
  get outputLength(): number {
    const out = this.#out;
    return out === undefined ? this.#transport.writableLength : this.#transport.writableLength + out.length;
  }

  /** write queues bytes (or UTF-8 text) for this client; false once the client is closing. */
  write(data: Buffer | Uint8Array | string): boolean {
    if (!this.open || this.#writeShut) return false;
    const buf =
      typeof data === 'string' ? Buffer.from(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (buf.length === 0) return true;
    if (this.#phase === 'migrating' || this.#hold?.waiting) {
      const hold = this.#holdOf();
      // Written after a shutdown asked for while on its way: the write side is closed by then.
      if (hold.endWhileMoving !== undefined) return false;
      // The socket is on its way to the new worker, or has just come from the old one: keep the
      // bytes in order for the worker that sends them.
      hold.push(buf);
      return true;
    }
    this.#send(buf);
    this.#onWrite(this);
    return this.open;
  }

  /** print writes its arguments joined without separators, as Perl's print does. */
  print(...args: Array<string | number | Buffer>): boolean {
    if (args.length === 1) return this.write(typeof args[0] === 'number' ? String(args[0]) : args[0]!);
    return this.write(Buffer.concat(args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a))))));
  }

  /**
   * shutdown closes the write side once queued output is sent; the client may go on sending.
   * Writes after it are refused (false), as IO::Multiplex refuses them with EPIPE.
   */
  shutdown(): void {
    const phase = this.#phase;
    if (phase === 'accepting' || phase === 'connected' || phase === 'eof') {
      if (this.#writeShut) return;
      this.#writeShut = true;
      const waiting = this.#hold?.waiting;
      if (waiting) waiting.after ??= 'shutdown';
      else this.#endWhenSent('end');
      // Its write side is closed: it finishes where it is rather than moving on a reload.
      this.movable = false;
    } else if (phase === 'migrating') {
      // On its way: the worker that serves it next shuts it down, after the output written before.
      this.#holdOf().endWhileMoving ??= 'shutdown';
    }
  }

  /** close sends what is queued, then closes the connection (IO::Multiplex's close). */
  close(): void {
    if (!this.open) return;
    if (this.#phase === 'migrating') {
      // On its way: the worker that serves it next closes it, after the output written before.
      this.#holdOf().endWhileMoving = 'close';
      return;
    }
    this.#phase = 'closing';
    const waiting = this.#hold?.waiting;
    if (waiting) waiting.after = 'close';
    else this.#endWhenSent('close');
  }

  /** destroy closes the connection at once, dropping queued output. */
  destroy(): void {
    if (this.#phase === 'closed') return;
    if (this.#phase === 'migrating') {
      // On its way: the worker that serves it next drops it.
      const hold = this.#holdOf();
      hold.endWhileMoving = 'destroy';
      hold.held = undefined;
      return;
    }
    this.#phase = 'closing';
    if (this.#hold) this.#hold.waiting = undefined;
    this.#dropIdleHold();
    this.#out?.stop();
    this.#transport.destroy();
  }

  /** toString names the client in log lines: `#3 [127.0.0.1]:51234`. */
  toString(): string {
    if (this.proto === 'pipe') return `#${this.id} pid ${this.peerport}`;
    return this.proto === 'unix'
      ? `#${this.id} ${this.added ? this.peeraddr || 'unix' : this.listener}`
      : `#${this.id} [${this.peeraddr}]:${this.peerport}`;
  }
}
