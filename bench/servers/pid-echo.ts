/**
 * pid-echo (TypeScript) — bench/servers/pid-echo.mjs as a .ts entry, so the reload test also covers
 * `netplex run` through tsx.
 */
import {
  type Client,
  type InputBuffer,
  isMain,
  MultiplexServer,
  type Mux,
} from '../../packages/core/dist/bundle/index.js';

const HEADER = Buffer.from(`PID ${String(process.pid).padStart(11, '0')}\n`);

class PidEcho extends MultiplexServer {
  override muxConnection(_mux: Mux, client: Client): void {
    client.write(HEADER);
  }
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    client.write(input.takeAll());
  }
}

if (isMain(import.meta.url)) await PidEcho.run();
