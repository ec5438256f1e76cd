/**
 * lines — a line protocol: every `\n`-terminated line a client sends is answered with that line.
 * The benchmark's line scenario drives it; it is the smallest server that goes through the line
 * helpers of the input buffer (`\r\n` is accepted and answered as `\n`).
 *
 *   netplex run packages/examples/src/lines.ts --port=2008
 */
import { type Client, type InputBuffer, isMain, MultiplexServer, type Mux } from '@netplex/core';

const LF = 0x0a;

/** Lines answers each complete line with the same line; a partial line waits for its end. */
export class Lines extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    // lineBuffer() in a plain loop: the fastest of the line helpers (no iterator per call).
    for (let line = input.lineBuffer(); line !== undefined; line = input.lineBuffer()) {
      // One write per answer: the line is a view on the input, so it is copied once with its \n.
      const reply = Buffer.allocUnsafe(line.length + 1);
      line.copy(reply);
      reply[line.length] = LF;
      client.write(reply);
    }
  }
}

if (isMain(import.meta.url)) await Lines.run();
