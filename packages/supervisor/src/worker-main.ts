/**
 * worker-main — what a worker process runs first: it loads the entry as if the entry had been
 * started directly, and turns an error while loading it (a syntax error, an exception at import)
 * into one readable `netplex:fatal` message for the supervisor instead of a stack on stderr.
 *
 *   node [loader flags] worker-main.js ENTRY [server options...]
 */
import { pathToFileURL } from 'node:url';
import { entryKey, formatUserError, type WorkerMessage } from '@netplex/core';

const [entry, ...options] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('netplex worker: no entry given\n');
  process.exit(2);
}
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
