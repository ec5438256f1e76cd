/**
 * The supervisor's process invariants, checked against the kernel's own view in /proc: the
 * processes alive are exactly those `netplex status` lists, and the listen sockets are held by the
 * supervisor and accepted on only by workers that serve (or are about to).
 */
import { expect } from 'vitest';
import { statusJson } from './proc.js';
import { childrenOf, childStates, cmdline, listenOwners, readText } from './procfs.js';

const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** supervisorPid reads the pid file. */
function supervisorPid(pidFile: string): number {
  return Number((readText(pidFile) ?? '').trim());
}

/** WorkerRow is one entry of `netplex status --json`'s `workers`. */
export interface WorkerRow {
  pid: number;
  role: 'serving' | 'starting' | 'migrating-in' | 'draining' | 'spare';
  generation: number | null;
  connections: number | null;
  started_at: string;
}

/**
 * checkInvariants asserts, for a supervisor serving TCP `port`:
 * - its children alive are exactly the workers `status` lists, and at most one of them starts (a
 *   listed worker may also be a child that has just exited, which the supervisor has not reaped yet:
 *   it learns of the exit on its next turn);
 * - the listen socket is held by the supervisor and by the serving worker, and by no process that is
 *   neither a listed worker that takes connections (serving, starting, migrating-in) nor the supervisor.
 * It returns the status, for more checks.
 */
export async function checkInvariants(
  pidFile: string,
  port: number,
  step = '',
): Promise<{ status: Record<string, unknown>; workers: WorkerRow[] }> {
  const where = step ? ` (${step})` : '';
  // status is one snapshot and /proc another: compare them only when the processes did not change
  // while status was asked (a restart finishing meanwhile starts a spare).
  let status: Record<string, unknown> | undefined;
  let children: number[] = [];
  let exited: number[] = [];
  let owners: number[] = [];
  for (let attempt = 0; ; attempt++) {
    const sup = supervisorPid(pidFile);
    const before = { children: childrenOf(sup), owners: listenOwners(port) };
    status = await statusJson(pidFile);
    ({ alive: children, zombies: exited } = childStates(sup));
    owners = listenOwners(port);
    if (same(before.children, children) && same(before.owners, owners)) break;
    if (attempt >= 20) throw new Error(`the processes kept changing while status was asked${where}`);
  }
  const sup = status.supervisor_pid as number;
  const workers = status.workers as WorkerRow[];
  // A listed worker that exited before status was asked, and is not reaped yet, is not counted.
  const listed = workers
    .map((w) => w.pid)
    .filter((pid) => !exited.includes(pid))
    .sort((a, b) => a - b);
  const describe = (pid: number) => `${pid}: ${cmdline(pid)}`;
  expect(
    children,
    `the supervisor's children are exactly the listed workers${where}: ${JSON.stringify(workers)}; children ${children.map(describe).join('; ')}`,
  ).toEqual(listed);
  expect(
    workers.filter((w) => w.role === 'starting' || w.role === 'migrating-in').length,
    `at most one worker starts${where}`,
  ).toBeLessThanOrEqual(1);
  const serving = workers.filter((w) => w.role === 'serving');
  expect(serving.length, `one serving worker${where}: ${JSON.stringify(workers)}`).toBeLessThanOrEqual(1);
  const may = new Set([
    sup,
    ...workers.filter((w) => w.role !== 'spare' && w.role !== 'draining').map((w) => w.pid),
  ]);
  expect(
    owners.filter((p) => !may.has(p)),
    `no other process holds the listen socket${where}`,
  ).toEqual([]);
  expect(owners, `the supervisor holds the listen socket${where}`).toContain(sup);
  for (const w of serving) expect(owners, `the serving worker ${w.pid} accepts${where}`).toContain(w.pid);
  return { status, workers };
}
