/**
 * @netplex/core — multiplexed TCP servers in the Net::Server::Multiplex model. This file only
 * assembles and re-exports; each module holds one concept.
 */
export * from './access.js';
export * from './argv.js';
export * from './client.js';
export * from './conf-file.js';
export * from './config.js';
export * from './error-format.js';
export * from './errors.js';
export * from './help.js';
export * from './hooks.js';
export * from './input.js';
export * from './ipc.js';
export * from './listeners.js';
export * from './logger.js';
export * from './main.js';
export * from './multiplex-server.js';
export * from './mux.js';
export * from './options.js';
export * from './port-spec.js';
export * from './suggest.js';
export * from './supervise.js';
export * from './worker.js';
