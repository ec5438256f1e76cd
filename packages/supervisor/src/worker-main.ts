/**
 * worker-main — what a worker process runs first: it loads the entry as if the entry had been
 * started directly, and turns an error while loading it (a syntax error, an exception at import)
 * into one readable `netplex:fatal` message for the supervisor instead of a stack on stderr.
 *
 *   node [loader flags] worker-main.js ENTRY [server options...]
 *   node [loader flags] worker-main.js            (a spare: waits for netplex:load)
 */
import { pathToFileURL } from 'node:url';
import { formatUserError } from '@netplex/core';
import { entryKey, isSupervisorMessage, type WorkerMessage } from '@netplex/core/internal';

/**
 * A spare worker is started with no entry: it loads Node, the loader and netplex's runtime ahead of
 * time, then waits for the supervisor to name the entry. A reload then pays only for the new code.
 */
function waitForLoad(): Promise<{ entry: string; options: string[] }> {
  return new Promise((resolve) => {
    const onMessage = (msg: unknown) => {
      if (!isSupervisorMessage(msg) || msg.type !== 'netplex:load') return;
      const m = msg;
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      resolve({ entry: m.entry, options: m.argv });
    };
    // A spare whose supervisor is gone has nothing to do.
    const onDisconnect = () => process.exit(0);
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
  });
}

const [first, ...rest] = process.argv.slice(2);
const { entry, options } = first ? { entry: first, options: rest } : await waitForLoad();
const url = pathToFileURL(entry).href;
(globalThis as Record<symbol, unknown>)[entryKey] = url;
process.argv = [process.argv[0]!, entry, ...options];

try {
  await import(url);
} catch (err) {
  const e = err as Error & { code?: string };
  const message: WorkerMessage = { type: 'netplex:fatal', message: formatUserError(err) };
  if (typeof e.code === 'string') message.code = e.code;
  await new Promise<void>((resolve) => {
    if (process.send && process.connected) process.send(message, undefined, {}, () => resolve());
    else {
      process.stderr.write(`${message.message}\n`);
      resolve();
    }
  });
  process.exit(1);
}
