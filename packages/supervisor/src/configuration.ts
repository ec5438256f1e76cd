/**
 * configuration — the supervisor's copy of the server's configuration, resolved from every source
 * with the option schema of the server class this process loaded.
 */
import {
  type AnyMultiplexServer,
  type ConfigNotice,
  createLogger,
  loadConfig,
  type MultiplexServer,
  type NetplexLogger,
  type OptionsShape,
  type ServerConfig,
  serverOptions,
  syslogOptionsOf,
} from '@netplex/core';
import { transportNote } from './migration-relay.js';

/** ConfigurationSources are where the supervisor reads the configuration from. */
export interface ConfigurationSources {
  server: AnyMultiplexServer;
  runArgs: Record<string, unknown>;
  argv: string[];
  cwd?: string | undefined;
  defaults?: Record<string, unknown> | undefined;
}

/**
 * loadServerConfiguration resolves the configuration from every source; it throws a ConfigError
 * when it is bad. For a reload, conf_file keys this process's copy of the server does not know are
 * skipped: new code may add options, and the new worker, which loads that code, validates them.
 */
export function loadServerConfiguration(
  sources: ConfigurationSources,
  reload: boolean,
): Readonly<ServerConfig> {
  const { server, runArgs, argv, cwd } = sources;
  const ctor = server.constructor as typeof MultiplexServer;
  const shape = { ...serverOptions, ...ctor.options } as OptionsShape;
  const { config, confText, notices } = loadConfig(shape, {
    constructor: server.args,
    argv,
    run: runArgs,
    defaults: { ...sources.defaults, ...server.defaultValues() },
    cwd: cwd ?? process.cwd(),
    confUnknown: reload ? 'skip' : 'error',
  });
  if (confText !== undefined) confTexts.set(config, confText);
  noticesOf.set(config, notices);
  return config as unknown as Readonly<ServerConfig>;
}

/** The notices of each configuration: what netplex does with the Net::Server options it has. */
const noticesOf = new WeakMap<object, readonly ConfigNotice[]>();
/** The notices each logger has logged, so that none is said twice in one supervisor's run. */
const logged = new WeakMap<NetplexLogger, Set<string>>();

/**
 * createSupervisorLogger is the supervisor's root logger: where log_file says (syslog too, as
 * Net::Server logs everything there), else `destination` or stderr; its lines carry role supervisor.
 */
export function createSupervisorLogger(
  config: Readonly<ServerConfig>,
  destination: NodeJS.WritableStream | undefined,
): NetplexLogger {
  return createLogger({
    log_level: config.log_level,
    log_file: config.log_file,
    syslog: syslogOptionsOf(config),
    destination,
    bindings: { role: 'supervisor' },
  });
}

/**
 * logNotices logs what `config` asks of netplex that it does otherwise, each line that `logger` has
 * not logged yet: all of them at start, and after a reload only those its configuration brought
 * anew. They are the notices of the Net::Server options netplex does not do as Net::Server does,
 * and the line saying that migrations go through the supervisor when they cannot go direct.
 * Workers never log them (each would say them again).
 */
export function logNotices(config: Readonly<ServerConfig>, logger: NetplexLogger): void {
  const said = logged.get(logger) ?? new Set<string>();
  logged.set(logger, said);
  const note = transportNote(config.reload_mode, config.migration_transport);
  const lines = [
    ...(note ? [{ level: note.level, message: note.line, fields: undefined }] : []),
    ...(noticesOf.get(config) ?? []).map((n) => ({ ...n, fields: { option: n.keys } })),
  ];
  for (const { level, message, fields } of lines) {
    if (said.has(message)) continue;
    said.add(message);
    logger.log(level, message, fields);
  }
}

/** The conf_file text each configuration was read from. */
const confTexts = new WeakMap<object, string>();

/**
 * confTextOf is the conf_file text `config` was read from: what a worker started with that
 * configuration parses, rather than the file as it is on disk now.
 */
export function confTextOf(config: Readonly<ServerConfig>): string | undefined {
  return confTexts.get(config);
}
