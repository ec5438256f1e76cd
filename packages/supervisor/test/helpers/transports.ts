/**
 * transports — running a migration test over each transport (`migration_transport` direct and
 * relay), and checking that a run got the transport it asked for: a migration that fell back to
 * the relay without saying so fails the direct run. When the native module is unavailable, the
 * direct runs are skipped, and the reason is printed.
 */
import { unixUnavailable } from '@netplex/unix';
import { describe, expect } from 'vitest';
import type { LogLine, Proc } from './proc.js';

/** The transports every migration test runs over. */
export const TRANSPORTS = ['direct', 'relay'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** transportArg is the option that asks for `t`. */
export const transportArg = (t: Transport) => `--migration_transport=${t}`;

/** skipReason says why migrations over `t` cannot run here, or undefined when they can. */
export function skipReason(t: Transport): string | undefined {
  if (t !== 'direct') return undefined;
  const missing = unixUnavailable();
  return missing === undefined ? undefined : `the native unix-socket module is unavailable: ${missing}`;
}

/**
 * describeTransports declares `name (t)` once per transport, each with `body(t)`; a transport that
 * cannot run here is declared skipped, with its reason printed.
 */
export function describeTransports(name: string, body: (t: Transport) => void): void {
  for (const t of TRANSPORTS) {
    const reason = skipReason(t);
    if (reason === undefined) {
      describe(`${name} (${t})`, () => body(t));
      continue;
    }
    console.warn(`${name} over the ${t} transport skipped: ${reason}`);
    describe.skip(`${name} (${t}): skipped, ${reason}`, () => body(t));
  }
}

/** What a worker or the supervisor says when a migration falls back to the relay. */
const FALLBACKS = [
  'no direct migration link came',
  'the supervisor said a migration link was there, and none was',
  'live migration goes through the supervisor (relay)',
];

/** fallbacks lists the log lines (after the first `after`) saying that a migration went another way. */
export function fallbacks(proc: Proc, after = 0): string[] {
  return proc.lines
    .slice(after)
    .map((l) => String(l.msg))
    .filter((msg) => FALLBACKS.some((f) => msg.includes(f)));
}

/**
 * expectTransport asserts that a reload's outcome line (`reloaded in …`) names transport `t`, and,
 * when `proc` is given, that no log line after `after` says that the migration fell back.
 */
export function expectTransport(line: LogLine, t: Transport, proc?: Proc, after = 0): void {
  expect(line.transport, `the migration's transport, in ${JSON.stringify(line)}`).toBe(t);
  expect(String(line.msg), 'the reload line names the transport').toContain(`migrated (${t})`);
  if (proc) expect(fallbacks(proc, after), `no fallback from ${t}`).toEqual([]);
}

/** expectStatusTransport asserts that `netplex status --json`'s last migration went over `t`. */
export function expectStatusTransport(status: Record<string, unknown>, t: Transport): void {
  const last = status.last_migration as { transport?: string } | null;
  expect(last?.transport, `last_migration.transport in ${JSON.stringify(last)}`).toBe(t);
}
