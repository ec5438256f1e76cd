/**
 * configuration — the supervisor's copy of the server's configuration, resolved from every source
 * with the option schema of the server class this process loaded.
 */
import {
  type AnyMultiplexServer,
  loadConfig,
  type MultiplexServer,
  type OptionsShape,
  type ServerConfig,
  serverOptions,
} from '@netplex/core';

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
  const { config, confText } = loadConfig(shape, {
    constructor: server.args,
    argv,
    run: runArgs,
    defaults: { ...sources.defaults, ...server.defaultValues() },
    cwd: cwd ?? process.cwd(),
    confUnknown: reload ? 'skip' : 'error',
  });
  if (confText !== undefined) confTexts.set(config, confText);
  return config as unknown as Readonly<ServerConfig>;
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
