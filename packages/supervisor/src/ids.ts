/**
 * ids — the user and group a worker runs as, when the supervisor runs as root: names are looked up
 * in /etc/passwd and /etc/group (through the env, so that tests can give their own), numbers are
 * taken as they are.
 */
import type { ServerConfig } from '@netplex/core';
import type { SupervisorEnv } from './env.js';
import { SupervisorError } from './errors.js';

/** WorkerIds are the ids to fork a worker with; undefined ones are the supervisor's own. */
export interface WorkerIds {
  uid?: number | undefined;
  gid?: number | undefined;
}

/** resolveIds turns the user and group options into ids to fork the worker with, when running as root. */
export function resolveIds(config: Readonly<ServerConfig>, env: SupervisorEnv): WorkerIds {
  if (process.getuid?.() !== 0) return {};
  return {
    uid: config.user === undefined ? undefined : lookupId(env, 'user', config.user),
    gid: config.group === undefined ? undefined : lookupId(env, 'group', config.group),
  };
}

/** hasIds is true when a worker would run as another user or group than the supervisor. */
export function hasIds(ids: WorkerIds): boolean {
  return ids.uid !== undefined || ids.gid !== undefined;
}

function lookupId(env: SupervisorEnv, kind: 'user' | 'group', name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const db = kind === 'user' ? '/etc/passwd' : '/etc/group';
  for (const line of env.readFile(db).split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new SupervisorError('SUP_ERR_USER', `${kind} ${JSON.stringify(name)} is not in ${db}`);
}
