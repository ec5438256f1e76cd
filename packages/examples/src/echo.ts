/**
 * echo — every byte a client sends comes straight back. No line parsing, no copies.
 *
 *   netplex run packages/examples/src/echo.ts --port=2007
 */
import { type Client, type InputBuffer, isMain, MultiplexServer, type Mux } from '@netplex/core';

/** Echo sends each client's input back to it unchanged. */
export class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    client.write(input.takeAll());
  }
}

if (isMain(import.meta.url)) await Echo.run();
