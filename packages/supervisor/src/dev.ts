/**
 * dev — `netplex dev`: the supervisor, plus a watcher that reloads on every save.
 *
 * It watches the entry's package (the nearest directory with a package.json) and the conf_file,
 * leaving out node_modules, dist, .git and editor temp files. A burst of saves makes one reload.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AnyMultiplexServer } from '@netplex/core';
import { watch } from 'chokidar';
import { supervise } from './supervise.js';
import type { Supervisor } from './supervisor.js';

/** How long the watcher waits after a save for more before reloading. */
const SETTLE_MS = 50;

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
    /(~|\.swp|\.swx|\.tmp|\.bak|#)$/.test(path) ||
    /(^|[/\\])(\.#|#)[^/\\]*$/.test(path)
  );
}

/** watchAndReload reloads `sup` whenever a watched file changes, one reload per burst. */
export function watchAndReload(sup: Supervisor, roots: string[]): () => Promise<void> {
  const watcher = watch(roots, { ignored: (p: string) => isIgnored(p), ignoreInitial: true });
  let timer: NodeJS.Timeout | undefined;
  const onChange = (path: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      sup.logger.log(2, `changed: ${path}`);
      void sup.reload();
    }, SETTLE_MS);
  };
  watcher.on('add', onChange).on('change', onChange).on('unlink', onChange);
  return async () => {
    clearTimeout(timer);
    await watcher.close();
  };
}

/** devSupervise is supervise() with the watcher attached. */
export function devSupervise(server: AnyMultiplexServer, runArgs: Record<string, unknown>): Promise<void> {
  const entry = process.argv[1] ?? '';
  return supervise(server, runArgs, {
    onStarted: (sup) => {
      const roots = [packageDirOf(entry)];
      if (sup.config.conf_file) roots.push(sup.config.conf_file);
      const close = watchAndReload(sup, roots);
      void sup.stopped.then(close);
    },
  });
}
