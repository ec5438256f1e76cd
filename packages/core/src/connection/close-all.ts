/**
 * connection/close-all — closing every connection of a server that stops: each is given a moment
 * to flush, then dropped, and a close hook that never settles cannot hold the server open.
 */
import type { ServerContext } from '../server/context.js';
import { sessionClosed } from './session.js';

/** closeSessions closes every connection, giving each up to `ms` to flush before it is dropped. */
export async function closeSessions<S>(ctx: ServerContext<S>, ms: number): Promise<void> {
  const sessions = [...ctx.sessions.values()];
  if (sessions.length === 0) return;
  for (const s of sessions) s.client.close();
  const timer = setTimeout(() => {
    for (const s of sessions) s.client.destroy();
  }, ms);
  // A close hook that never settles must not hold the server open forever: bounded at twice `ms`.
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(sessions.map((s) => sessionClosed(s))),
    new Promise<void>((resolve) => {
      giveUp = setTimeout(() => {
        ctx.log(
          1,
          `${sessions.filter((s) => s.client.phase !== 'closed').length} connections did not finish closing`,
        );
        resolve();
      }, 2 * ms);
    }),
  ]);
  clearTimeout(giveUp);
  clearTimeout(timer);
}
