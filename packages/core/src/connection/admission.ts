/**
 * connection/admission — Net::Server's get_client_info and allow_deny for one client: the reverse
 * lookup (and its double check) and the allow, deny, cidr_allow and cidr_deny rules. The stream
 * client flow and the UDP flow both admit clients through these.
 */
import { doubleReverseLookup } from '../access.js';
import type { ServerContext } from '../server/context.js';
import type { Client } from './client.js';

/**
 * reverseLookup sets peerhost when reverse_lookups is on, without blocking other clients; it
 * returns false when double_reverse_lookups is on and the name does not resolve back.
 */
export async function reverseLookup<S>(ctx: ServerContext<S>, client: Client<S>): Promise<boolean> {
  if (!needsLookup(ctx, client)) return true;
  const cfg = ctx.config;
  const double =
    cfg.double_reverse_lookups !== false ||
    (typeof cfg.reverse_lookups === 'string' && cfg.reverse_lookups.startsWith('double'));
  const result = await doubleReverseLookup(client.peeraddr, { verify: double });
  client.peerhost = result.peerhost;
  if (double && !result.verified) {
    ctx.log(3, `Double reverse lookup failed for ${client.peeraddr}: ${result.reason}`, {
      conn: client.id,
      peer: client.peeraddr,
    });
    return false;
  }
  return true;
}

/** needsLookup is true when a client's flow waits for a reverse lookup. */
export function needsLookup<S>(ctx: ServerContext<S>, client: Client<S>): boolean {
  const cfg = ctx.config;
  return client.proto !== 'unix' && (cfg.reverse_lookups !== false || cfg.double_reverse_lookups !== false);
}

/** allowDeny applies allow, deny, cidr_allow and cidr_deny (Net::Server's allow_deny). */
export function allowDeny<S>(ctx: ServerContext<S>, client: Client<S>): boolean {
  if (client.proto === 'unix') return true;
  const verdict = ctx.access!.check(client);
  if (!verdict.allowed) {
    ctx.log(2, `Denied client ${client}: ${verdict.reason}`, { conn: client.id, peer: client.peeraddr });
  }
  return verdict.allowed;
}
