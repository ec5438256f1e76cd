/**
 * idle_timeout in the worker being replaced (migration/freeze.ts), driven through
 * WorkerHost.migrateOut with a fake MigrationChannel and real TCP clients: what a moving connection
 * carries of its idle clock, and a connection that stays after all being closed here once idle.
 */
import { describe, expect, it } from 'vitest';
import { deferred } from '../helpers/client.js';
import { startMoveServer } from '../helpers/migration.js';

describe('idle_timeout across a migration (the old worker)', () => {
  it('sends the time the connection has been without input as frozen.idleMs, and no limit of its own', async () => {
    const h = await startMoveServer({ idle_timeout: 10 });
    const [p] = await h.connect(1);
    p!.send('hello\n');
    await p!.waitFor('hello\n');
    const lastInput = Date.now();
    await new Promise((r) => setTimeout(r, 200));
    const counts = await h.finish(h.migrate());
    const sentBy = Date.now();
    expect(counts).toMatchObject({ migrated: 1, failed: 0 });
    const frozen = h.channel.frozen(1);
    expect(frozen.idleMs).toBeGreaterThanOrEqual(190);
    expect(frozen.idleMs).toBeLessThanOrEqual(sentBy - lastInput + 50);
    // It follows idle_timeout: the new worker applies its own.
    expect(frozen.idleLimitMs).toBeUndefined();
  });

  it('sends a limit set with mux.setIdleTimeout as frozen.idleLimitMs; nothing without an idle clock', async () => {
    const h = await startMoveServer({ idle_timeout: 0 }, (srv) => {
      const connect = srv.muxConnection.bind(srv);
      srv.muxConnection = (mux, client) => {
        connect(mux, client);
        if (client.id === 1) mux.setIdleTimeout(client, 7.5);
        if (client.id === 2) mux.setIdleTimeout(client, null);
      };
    });
    await h.connect(3);
    const counts = await h.finish(h.migrate());
    expect(counts).toMatchObject({ migrated: 3, failed: 0 });
    expect(h.channel.frozen(1).idleLimitMs).toBe(7500);
    expect(h.channel.frozen(1).idleMs).toBeGreaterThanOrEqual(0);
    // No idle limit, set so: that moves too, so that the new worker's idle_timeout does not apply.
    expect(h.channel.frozen(2).idleLimitMs).toBe(0);
    expect(h.channel.frozen(3).idleLimitMs).toBeUndefined();
    expect(h.channel.frozen(3).idleMs).toBeUndefined();
  });

  it('closes here, through muxTimeout, a connection whose limit passed on its way and that stays', async () => {
    const h = await startMoveServer({ idle_timeout: 0.3 });
    const refuse = deferred<boolean>();
    h.channel.answer = () => refuse.promise;
    const [p] = await h.connect(1);
    const migration = h.migrate();
    await h.channel.waitConn(1);
    // Its limit passes while it is on its way: nothing fires while it moves.
    await new Promise((r) => setTimeout(r, 500));
    expect(h.srv.count('muxTimeout #1')).toBe(0);
    refuse.resolve(false);
    expect(await h.finish(migration)).toMatchObject({ migrated: 0, failed: 1 });
    // Back to work here: due already, so muxTimeout runs at once, and the default close follows.
    await p!.waitFor('timeout #1\n');
    await p!.waitClosed();
    expect(h.srv.count('muxTimeout #1')).toBe(1);
    expect(h.logs.messages.filter((m) => m.includes('(idle_timeout): closing'))).toHaveLength(1);
  });
});
