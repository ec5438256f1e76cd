/**
 * How migrations travel (migration_transport): direct where the native module is there, the relay
 * otherwise, said once in the log at start; the reload line and `netplex status --json` name the
 * transport. NETPLEX_NO_NATIVE=1 makes the native module unavailable, as on a machine where it could
 * not be built.
 */
import { unixUnavailable } from '@netplex/unix';
import { describe, expect, it } from 'vitest';
import { ask, greet, startTagged, statusJson } from '../helpers/proc.js';

const RELAY_NOTE = 'live migration goes through the supervisor (relay)';
const missing = unixUnavailable();
if (missing !== undefined)
  console.warn(`direct transport checks skipped: the native module is unavailable: ${missing}`);

describe('migration_transport', () => {
  it('without the native module: one line at start says so, and every migration goes through the relay', async () => {
    const { proc, port, pidFile } = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}'], {
      env: { NETPLEX_NO_NATIVE: '1' },
    });
    const notes = () => proc.lines.filter((l) => String(l.msg).includes(RELAY_NOTE));
    expect(notes()).toHaveLength(1);
    expect(String(notes()[0]!.msg)).toContain('disabled by NETPLEX_NO_NATIVE');
    expect(notes()[0]!.level, 'a notice, not a warning: auto asked for nothing more').toBe(35);
    expect((await statusJson(pidFile)).migration_transport).toBe('relay');
    const { socket } = await greet(port);
    for (let i = 0; i < 2; i++) {
      const line = await proc.hup(`reload ${i + 1}`);
      expect(line.msg).toMatch(/: 1 connections migrated \(relay\) in \d+ ms$/);
      expect(line.transport).toBe('relay');
    }
    expect(((await statusJson(pidFile)).last_migration as { transport: string }).transport).toBe('relay');
    expect(notes(), 'said once, not at every reload').toHaveLength(1);
    expect(await ask(socket, 'where?')).toMatch(/ where\?$/);
    socket.destroy();
  });

  it('migration_transport direct without the native module: the same line, as a warning', async () => {
    const { proc } = await startTagged(['--port=127.0.0.1:0', '--migration_transport=direct'], {
      env: { NETPLEX_NO_NATIVE: '1' },
    });
    const notes = proc.lines.filter((l) => String(l.msg).includes(RELAY_NOTE));
    expect(notes.map((l) => l.level)).toEqual([40]);
  });

  it.skipIf(missing !== undefined)(
    'with the native module: direct by default, relay when asked, and status says which',
    async () => {
      const auto = await startTagged(['--port=127.0.0.1:0', '--pid_file={pid}']);
      expect(auto.proc.lines.filter((l) => String(l.msg).includes(RELAY_NOTE))).toEqual([]);
      expect((await statusJson(auto.pidFile)).migration_transport).toBe('direct');
      const a = await greet(auto.port);
      expect((await auto.proc.hup('the reload')).transport).toBe('direct');
      a.socket.destroy();

      const relay = await startTagged([
        '--port=127.0.0.1:0',
        '--pid_file={pid}',
        '--migration_transport=relay',
      ]);
      expect(relay.proc.lines.filter((l) => String(l.msg).includes(RELAY_NOTE))).toEqual([]);
      expect((await statusJson(relay.pidFile)).migration_transport).toBe('relay');
      const r = await greet(relay.port);
      expect((await relay.proc.hup('the reload')).transport).toBe('relay');
      r.socket.destroy();
    },
  );
});
