/**
 * pretty — log lines for a person (netplex dev): pino-pretty applied to the supervisor's own JSON
 * lines and to each line a worker writes on stderr. Lines that are not JSON pass through unchanged.
 */
import { Writable } from 'node:stream';
import { logLevels } from '@netplex/core';
import { prettyFactory } from 'pino-pretty';

/** createPrettifier returns a function turning one log line into text for a terminal. */
export function createPrettifier(colorize: boolean): (line: string) => string {
  const prettify = prettyFactory({
    colorize,
    // pino-pretty learns custom levels only from a transport, and a list given here replaces its
    // own: name every level netplex writes, notice included.
    customLevels: Object.values(logLevels)
      .map((l) => `${l.pino}:${l.value}`)
      .join(','),
    ignore: 'hostname,role',
    translateTime: 'HH:MM:ss.l',
    singleLine: true,
  });
  return (line: string) => {
    if (!line.startsWith('{')) return `${line}\n`;
    try {
      return prettify(JSON.parse(line) as object);
    } catch {
      return `${line}\n`;
    }
  };
}

/** createPrettyStream is a stream of JSON log lines that writes them pretty to `out`. */
export function createPrettyStream(out: NodeJS.WritableStream, colorize: boolean): Writable {
  const prettify = createPrettifier(colorize);
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line) out.write(prettify(line));
      done();
    },
  });
}
