/**
 * lineproxy — a line proxy: each client gets a connection of its own to the upstream server, added
 * to the mux (`mux.add`) and linked to the client (`mux.link`), and whole lines flow both ways. A
 * partial line waits for its end; a side that ends its output has the other side's write side shut
 * after the lines before it, and a side that closes closes the other.
 *
 *   netplex run packages/examples/src/lineproxy.ts --port=2009 --upstream=127.0.0.1:6000
 *
 * `--upstream` is HOST:PORT, [IPv6]:PORT or the path of a unix socket. The same hooks serve both
 * ends: each passes to the one it is linked to. On a migrating reload a client and its upstream
 * connection move to the new worker in one step, lines on their way included.
 */
import net from 'node:net';
import { type Client, type InputBuffer, isMain, MultiplexServer, type Mux } from '@netplex/core';
import { z } from 'zod';

const LF = 0x0a;

/** parseUpstream reads `--upstream`: a unix socket's path, or HOST:PORT (with [IPv6]); undefined if neither. */
export function parseUpstream(spec: string): net.NetConnectOpts | undefined {
  if (spec.includes('/')) return { path: spec };
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(spec);
  if (!m || Number(m[3]) > 65535) return undefined;
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** passLines writes the whole lines of `input` to `to`, in one write; a partial line stays. */
function passLines(input: InputBuffer, to: Client | undefined): void {
  const last = input.bytes().lastIndexOf(LF);
  if (last === -1) return;
  to?.write(input.take(last + 1)!);
}

/** LineProxy passes each client's lines to an upstream connection of its own, and the answers back. */
export class LineProxy extends MultiplexServer<Record<string, unknown>, { upstream: string }> {
  static override options = {
    upstream: z
      .string()
      .refine((s) => parseUpstream(s) !== undefined, 'HOST:PORT, [IPv6]:PORT or a unix socket path')
      .describe('where each client is passed on: HOST:PORT, [IPv6]:PORT or a unix socket path'),
  };

  #target: net.NetConnectOpts | undefined;

  override postConfigureHook(): void {
    this.#target = parseUpstream(this.config.upstream);
  }

  override muxConnection(mux: Mux, client: Client): void {
    // The client's end of input does not end its answers: those to its last lines come after it.
    client.allowHalfOpen = true;
    mux.link(client, mux.add(net.connect(this.#target!)));
  }

  /** Lines from either end go to the other. */
  override muxInput(mux: Mux, end: Client, input: InputBuffer): void {
    passLines(input, mux.linked(end));
  }

  /** One end is done writing: the rest of what it said goes on, then the other end's write side shuts. */
  override muxEof(mux: Mux, end: Client, input: InputBuffer): void {
    const other = mux.linked(end);
    if (input.length > 0) other?.write(input.takeAll());
    other?.shutdown();
  }

  override muxClose(mux: Mux, end: Client): void {
    mux.linked(end)?.close();
  }
}

if (isMain(import.meta.url)) await LineProxy.run();
