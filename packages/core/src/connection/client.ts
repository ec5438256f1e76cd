/**
 * client — the per-connection object every mux callback receives.
 *
 * It plays the part of Net::Server::Multiplex's client-specific callback object: the peer's
 * addresses, the `requests` counter as `id`, the connect time, the server's own typed `state`, and
 * `print`/`write` that go to this client (the seed's "STDOUT tied to the client").
 */
import type { Logger } from 'pino';
import { InputBuffer } from './input.js';
import { type ConnectionEnd, NOTHING, OutputHold } from './output-hold.js';

export type { ConnectionEnd } from './output-hold.js';

/** Transport is what a Client writes to: a TCP or unix stream, or a UDP peer. */
export interface Transport {
  write(data: Buffer): void;
  /** end closes the write side once queued output is flushed; the peer may go on sending. */
  end(): void;
  /** close flushes queued output, then closes both directions. */
  close(): void;
  /** destroy closes at once, dropping queued output. */
  destroy(): void;
  /** Bytes written but not yet handed to the kernel. */
  readonly writableLength: number;
}

/** ClientInfo is what netplex learns about a peer when it connects (Net::Server's get_client_info). */
export interface ClientInfo {
  id: number;
  proto: 'tcp' | 'udp' | 'unix';
  peeraddr: string;
  peerport: number;
  sockaddr: string;
  sockport: number;
  /** The listener's label, e.g. `127.0.0.1:20203/tcp`. */
  listener: string;
  /** When the connection was accepted (kept across a migration); now by default. */
  connectedAt?: Date;
}

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
  /** takeHeldOutput returns (and forgets) what was written while the connection was moving. */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any state type.
  takeHeldOutput(client: Client<any>): Buffer;
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
  readonly proto: 'tcp' | 'udp' | 'unix';
  /** peeraddr is the client's address; an IPv4 client of a dual-stack socket shows plain IPv4. */
  readonly peeraddr: string;
  readonly peerport: number;
  readonly sockaddr: string;
  readonly sockport: number;
  /** listener is the label of the listen socket the client came through. */
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
    clientControl = {
      setPhase: (client, phase) => {
        client.#phase = phase;
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
      restoreHeld: (client, output) => {
        if (output.length > 0) client.#holdOf().unshift(output);
      },
    };
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
    if (first.length > 0) this.#transport.write(first);
    if (held.length > 0) this.#transport.write(held);
    if (first.length > 0 || held.length > 0) this.#onWrite(this);
    if (end === 'close' || waiting.after === 'close') {
      if (this.open) this.#phase = 'closing';
      this.#transport.close();
    } else if (end === 'shutdown' || waiting.after === 'shutdown') {
      this.#transport.end();
      this.movable = false;
    }
  }

  /** outputLength is the number of bytes written to this client and not yet sent. */
  get outputLength(): number {
    return this.#transport.writableLength;
  }

  /** write queues bytes (or UTF-8 text) for this client; false once the client is closing. */
  write(data: Buffer | Uint8Array | string): boolean {
    if (!this.open) return false;
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
    this.#transport.write(buf);
    this.#onWrite(this);
    return this.open;
  }

  /** print writes its arguments joined without separators, as Perl's print does. */
  print(...args: Array<string | number | Buffer>): boolean {
    if (args.length === 1) return this.write(typeof args[0] === 'number' ? String(args[0]) : args[0]!);
    return this.write(Buffer.concat(args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a))))));
  }

  /** shutdown closes the write side once queued output is sent; the client may go on sending. */
  shutdown(): void {
    const phase = this.#phase;
    if (phase === 'accepting' || phase === 'connected' || phase === 'eof') {
      const waiting = this.#hold?.waiting;
      if (waiting) waiting.after ??= 'shutdown';
      else this.#transport.end();
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
    else this.#transport.close();
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
    this.#transport.destroy();
  }

  /** toString names the client in log lines: `#3 [127.0.0.1]:51234`. */
  toString(): string {
    return this.proto === 'unix'
      ? `#${this.id} ${this.listener}`
      : `#${this.id} [${this.peeraddr}]:${this.peerport}`;
  }
}
