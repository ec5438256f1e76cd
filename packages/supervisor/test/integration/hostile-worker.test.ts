/**
 * A worker runs arbitrary code and can send its supervisor anything. Thousands of malformed,
 * unknown and ill-timed messages (some with socket handles where none belongs) cost nothing: the
 * supervisor logs a bounded number of lines, closes every handle that came with them, and goes on
 * serving, answering status and reloading, while a witness client is answered throughout.
 *
 * Size: NETPLEX_HOSTILE_MESSAGES (default 3000); the seed is NETPLEX_HOSTILE_SEED (printed).
 */
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../helpers/invariants.js';
import { ask, fixture, netplexBin, Proc, tempDir, waitForRoles } from '../helpers/proc.js';

const MESSAGES = Number(process.env.NETPLEX_HOSTILE_MESSAGES ?? 3000);
const SEED = Number(process.env.NETPLEX_HOSTILE_SEED ?? Date.now() % 1_000_000);

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** open connects to 127.0.0.1:`port`. */
function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('a worker that sends its supervisor anything', () => {
  it(`${MESSAGES} hostile messages (NETPLEX_HOSTILE_MESSAGES, seed ${SEED} from NETPLEX_HOSTILE_SEED) are logged boundedly and ignored`, async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'server.pid');
    const proc = new Proc(process.execPath, [
      netplexBin,
      'run',
      fixture('hostile.ts'),
      '--port=127.0.0.1:0',
      `--pid_file=${pidFile}`,
    ]);
    const serving = await proc.waitLog(
      (l) => String(l.msg).includes('serving with worker'),
      'the supervisor to serve',
    );
    const port = (serving.ports as Array<{ port: number }>)[0]!.port;
    const witness = await open(port);
    expect(await ask(witness, 'before')).toBe('echo before');
    // The spare, which starts shortly after the worker is ready, has its descriptors counted too.
    await waitForRoles(pidFile, ['serving', 'spare'], 'the spare');
    const fdsBefore = fds(proc.pid);
    const before = proc.lines.length;
    const sender = await open(port);
    // The witness asks one line after another while the messages go: each must be answered within 5 s.
    let sending = true;
    let answered = 0;
    const witnessing = (async () => {
      while (sending) {
        expect(await ask(witness, `ping ${answered}`, 5_000)).toBe(`echo ping ${answered}`);
        answered++;
      }
    })();
    try {
      expect(await ask(sender, `hostile ${MESSAGES} ${SEED}`, 60_000)).toBe(`sent ${MESSAGES}`);
    } finally {
      sending = false;
    }
    await witnessing;
    expect(answered, 'the witness was answered while the messages went').toBeGreaterThan(0);
    await proc.until(() => proc.lines.length > before, 'a log line about the messages');
    // The aggregated line of the last window comes when it ends, a second after the last message.
    await new Promise((r) => setTimeout(r, 1100));
    const lines = proc.lines
      .slice(before)
      .filter(
        (l) => String(l.msg).includes('that is not valid') || String(l.msg).includes('that are not valid'),
      );
    const described = lines.reduce((n, l) => n + (typeof l.ignored === 'number' ? l.ignored : 1), 0);
    console.log(
      `hostile worker, seed ${SEED}: ${lines.length} log lines for ${described} dropped messages; supervisor fds ${fdsBefore} → ${fds(proc.pid)}`,
    );
    expect(described, 'most hostile messages are dropped and counted').toBeGreaterThan(MESSAGES / 2);
    expect(lines.length, 'the log lines are bounded').toBeLessThan(30);
    expect(proc.exit, 'the supervisor is alive').toBeUndefined();
    expect(fds(proc.pid), 'every handle that came along was closed').toBe(fdsBefore);
    expect(await ask(witness, 'after')).toBe('echo after');
    // status and a reload still work, and the invariants hold.
    await checkInvariants(pidFile, port, 'after the hostile messages');
    expect((await proc.hup('a reload after it')).msg).toMatch(/^reloaded in/);
    await checkInvariants(pidFile, port, 'after the reload');
    expect(await ask(witness, 'migrated')).toBe('echo migrated');
    witness.destroy();
    sender.destroy();
  }, 120_000);
});
