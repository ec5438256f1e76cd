// @ts-check
/**
 * pid-echo — the reload test's netplex server: an echo that first greets each connection with
 * "PID %011d\n", the pid of the worker serving it, so the load client can tell when a reload has
 * put new code in charge. Run from built core (plain .js, no loader); pid-echo.ts is the same
 * server through tsx.
 *
 *   netplex run bench/servers/pid-echo.mjs --port=127.0.0.1:0
 */
import { isMain, MultiplexServer } from '../../packages/core/dist/bundle/index.js';

/** @import { Client, InputBuffer, Mux } from '../../packages/core/dist/index.js' */

const HEADER = Buffer.from(`PID ${String(process.pid).padStart(11, '0')}\n`);

class PidEcho extends MultiplexServer {
  /**
   * @override
   * @param {Mux} _mux
   * @param {Client} client
   */
  muxConnection(_mux, client) {
    client.write(HEADER);
  }
  /**
   * @override
   * @param {Mux} _mux
   * @param {Client} client
   * @param {InputBuffer} input
   */
  muxInput(_mux, client, input) {
    client.write(input.takeAll());
  }
}

if (isMain(import.meta.url)) await PidEcho.run();
