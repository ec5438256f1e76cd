/**
 * lineproxy — a line proxy: each client gets a connection of its own to the upstream server, added
 * to the mux (`mux.add`) with a callback object of its own, and whole lines flow both ways. A partial
 * line waits for its end; a side that ends its output has the other side's write side shut after the
 * lines before it, and a side that closes closes the other.
 *
 *   netplex run packages/examples/src/lineproxy.ts --port=2009 --upstream=127.0.0.1:6000
 *
 * `--upstream` is HOST:PORT, [IPv6]:PORT or the path of a unix socket. A client and its upstream
 * finish in the worker that made them: on a reload they drain there (client.movable = false), while
 * new clients reach the new code.
 */
import net from 'node:net';
import {
  type Client,
  type InputBuffer,
  isMain,
  MultiplexServer,
  type Mux,
  type MuxHandler,
} from '@netplex/core';
import { z } from 'zod';

const LF = 0x0a;

/** ProxyState links the two ends of one proxied connection. */
export interface ProxyState {
  /** For a client: its upstream connection. For an upstream connection: its client. */
  peer?: Client<ProxyState>;
}

type End = Client<ProxyState>;

/** parseUpstream reads `--upstream`: a unix socket's path, or HOST:PORT (with [IPv6]); undefined if neither. */
export function parseUpstream(spec: string): net.NetConnectOpts | undefined {
  if (spec.includes('/')) return { path: spec };
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(spec);
  if (!m || Number(m[3]) > 65535) return undefined;
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** passLines writes the whole lines of `input` to `to`, in one write; a partial line stays. */
function passLines(input: InputBuffer, to: End | undefined): void {
  const bytes = input.bytes();
  const last = bytes.lastIndexOf(LF);
  if (last === -1) return;
  const lines = input.take(last + 1)!;
  to?.write(lines);
}

/** finish passes the rest of one side's input on, then shuts the other side's write side. */
function finish(input: InputBuffer, to: End | undefined): void {
  if (input.length > 0) to?.write(input.takeAll());
  to?.shutdown();
}

/** UpstreamSide runs the hooks of every upstream connection: what upstream says goes to its client. */
class UpstreamSide implements MuxHandler<ProxyState> {
  muxInput(_mux: Mux<ProxyState>, up: End, input: InputBuffer): void {
    passLines(input, up.state.peer);
  }
  muxEof(_mux: Mux<ProxyState>, up: End, input: InputBuffer): void {
    finish(input, up.state.peer);
  }
  muxClose(_mux: Mux<ProxyState>, up: End): void {
    up.state.peer?.close();
  }
}

/** LineProxy passes each client's lines to an upstream connection of its own, and the answers back. */
export class LineProxy extends MultiplexServer<ProxyState, { upstream: string }> {
  static override options = {
    upstream: z
      .string()
      .refine((s) => parseUpstream(s) !== undefined, 'HOST:PORT, [IPv6]:PORT or a unix socket path')
      .describe('where each client is passed on: HOST:PORT, [IPv6]:PORT or a unix socket path'),
  };

  readonly #upstream = new UpstreamSide();
  #target: net.NetConnectOpts | undefined;

  override postConfigureHook(): void {
    this.#target = parseUpstream(this.config.upstream);
  }

  override muxConnection(mux: Mux<ProxyState>, client: End): void {
    // The two ends finish together in this worker (they do not migrate apart), and the client's end
    // of input does not end its answers: those to its last lines come from upstream after it.
    client.movable = false;
    client.allowHalfOpen = true;
    client.state.peer = mux.add(net.connect(this.#target!), {
      state: { peer: client },
      object: this.#upstream,
    });
  }

  override muxInput(_mux: Mux<ProxyState>, client: End, input: InputBuffer): void {
    passLines(input, client.state.peer);
  }

  override muxEof(_mux: Mux<ProxyState>, client: End, input: InputBuffer): void {
    finish(input, client.state.peer);
  }

  override muxClose(_mux: Mux<ProxyState>, client: End): void {
    client.state.peer?.close();
  }
}

if (isMain(import.meta.url)) await LineProxy.run();
