/**
 * dev — `netplex dev`: the supervisor, plus a watcher that reloads on every save, with output made
 * for a person.
 *
 * It watches the entry's package (the nearest directory with a package.json) and the conf_file,
 * leaving out node_modules, dist, .git and editor temp files. A burst of saves makes one reload.
 * When the new code fails to load or start, the old worker keeps serving, the error is printed once,
 * and the next save tries again. drain_timeout defaults to 2 seconds, so that a developer soon talks
 * to the new code. No pid file is written unless pid_file is set.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type AnyMultiplexServer, formatBindTarget } from '@netplex/core';
import { watch } from 'chokidar';
import { DEV_SETTLE_MS } from './defaults.js';
import { createPrettifier, createPrettyStream } from './pretty.js';
import { supervise } from './supervise.js';
import type { Supervisor } from './supervisor.js';

/** devDefaults are netplex dev's defaults, below the server's own defaultValues(). */
export const devDefaults = { drain_timeout: 2 };

/** packageDirOf is the nearest directory at or above `file` holding a package.json. */
export function packageDirOf(file: string): string {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return dirname(file);
  }
}

/** isIgnored leaves out dependencies, build output, VCS data and editor temp files. */
export function isIgnored(path: string): boolean {
  return (
    /(^|[/\\])(node_modules|dist|\.git|\.turbo|coverage)([/\\]|$)/.test(path) ||
    /(~|\.swp|\.swx|\.swo|\.tmp|\.bak)$/.test(path) ||
    /(^|[/\\])(\.#|#)[^/\\]*$/.test(path) ||
    /(^|[/\\])4913$/.test(path)
  );
}

/**
 * watchAndReload reloads `sup` whenever a watched file changes, one reload per burst of saves. It
 * resolves once the watcher has read the tree (saves from then on are seen), with a close function.
 */
export async function watchAndReload(sup: Supervisor, roots: string[]): Promise<() => Promise<void>> {
  const watcher = watch(roots, { ignored: (p: string) => isIgnored(p), ignoreInitial: true });
  let timer: NodeJS.Timeout | undefined;
  const changed = new Set<string>();
  const onChange = (path: string) => {
    changed.add(path);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const files = [...changed];
      changed.clear();
      sup.logger.log(3, `changed: ${files.join(', ')}`, { files });
      void sup.reload();
    }, DEV_SETTLE_MS);
  };
  watcher.on('add', onChange).on('change', onChange).on('unlink', onChange);
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return async () => {
    clearTimeout(timer);
    await watcher.close();
  };
}

/** devSupervise is supervise() with the watcher, pretty output and dev defaults. */
export function devSupervise(server: AnyMultiplexServer, runArgs: Record<string, unknown>): Promise<void> {
  const entry = process.argv[1] ?? '';
  const colorize = Boolean(process.stderr.isTTY);
  const prettify = createPrettifier(colorize);
  return supervise(server, runArgs, {
    logDestination: createPrettyStream(process.stderr, colorize),
    defaults: devDefaults,
    workerStderrLine: (line) => process.stderr.write(prettify(line)),
    onStarted: async (sup) => {
      const roots = [packageDirOf(entry)];
      if (sup.config.conf_file) roots.push(sup.config.conf_file);
      const close = await watchAndReload(sup, roots);
      void sup.stopped.then(close);
      sup.logger.log(
        2,
        `listening on ${sup.addresses.map(formatBindTarget).join(', ')}; watching ${roots.join(', ')}`,
      );
    },
  });
}
