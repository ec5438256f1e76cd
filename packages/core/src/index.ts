/**
 * @netplex/core — multiplexed TCP servers in the Net::Server::Multiplex model. This file only
 * assembles and re-exports the documented API; each module holds one concept. What only the
 * supervisor and the worker runtime use is exported by `@netplex/core/internal` (internal.ts).
 */
export * from './access.js';
export * from './argv.js';
export * from './conf-file.js';
export * from './config.js';
export {
  Client,
  type ClientInfo,
  type ClientPhase,
  type ConnectionEnd,
  type Transport,
} from './connection/client.js';
export * from './connection/input.js';
export * from './error-format.js';
export * from './errors.js';
export * from './help.js';
export * from './hooks.js';
export * from './listeners.js';
export * from './logger.js';
export * from './main.js';
export type { MigrationCounts, MigrationTransport } from './migration/types.js';
export * from './mux.js';
export {
  acceptedKeys,
  type ConfigNotice,
  forkingOnlyOptions,
  type NetServerOption,
  type NetServerTreatment,
  netServerOptionOf,
  netServerOptions,
} from './net-server-options.js';
export * from './options.js';
export * from './port-spec.js';
export { type AnyMultiplexServer, MultiplexServer, type ServerOptionsOf } from './server/multiplex-server.js';
export type { ConstructorArgs, ServerState, StartOptions } from './server/types.js';
export * from './suggest.js';
export {
  isSyslogLogFile,
  SYSLOG_LOG_FILE,
  type SyslogOptions,
  syslogOptionsOf,
} from './syslog.js';
export {
  formatSyslog,
  type SyslogFacility,
  type SyslogFormat,
  type SyslogSocket,
  syslogFacilities,
  syslogSockets,
} from './syslog-format.js';
