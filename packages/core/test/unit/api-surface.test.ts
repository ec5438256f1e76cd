/**
 * What a server author sees: the members of MultiplexServer and Client are the hooks and the
 * documented API, and the package root exports nothing that only the supervisor and the worker
 * runtime use (those are in @netplex/core/internal).
 */
import { describe, expect, it } from 'vitest';
import * as root from '../../src/index.js';
import {
  Client,
  clientHooks,
  type InputBuffer,
  MultiplexServer,
  type Mux,
  processHooks,
} from '../../src/index.js';
import * as internal from '../../src/internal.js';

class Probe extends MultiplexServer {
  muxInput(_mux: Mux, _client: Client, _input: InputBuffer): void {}
}

/** Every member name reachable on an instance: own fields, then each prototype up to Object's. */
function membersOf(value: object): string[] {
  const names = new Set<string>(Object.keys(value));
  for (let p = Object.getPrototypeOf(value); p && p !== Object.prototype; p = Object.getPrototypeOf(p))
    for (const n of Object.getOwnPropertyNames(p)) if (n !== 'constructor') names.add(n);
  return [...names].sort();
}

const hooks = [...processHooks, ...clientHooks].map(([name]) => name);

describe('the API a server author sees', () => {
  it('MultiplexServer has the hooks and the documented API, nothing else', () => {
    const documented = [
      'args',
      'config',
      'argv',
      'logger',
      'mux',
      'requests',
      'done',
      'state',
      'listeners',
      'help',
      'addresses',
      'log',
      'run',
      'runInProcess',
      'start',
      'close',
      'status',
      'defaultValues',
    ];
    const seen = membersOf(new Probe());
    // An optional hook is not defined on the base class: a server that does not define it pays nothing.
    const optional = ['muxOutbufferEmpty'];
    expect(seen).toEqual([...new Set([...hooks.filter((h) => !optional.includes(h)), ...documented])].sort());
    for (const hook of optional) expect(seen).not.toContain(hook);
    for (const workerOnly of [
      'retire',
      'migrateOut',
      'adoptConnection',
      'resumeAccepting',
      'thawServer',
      'releaseAdopted',
      'setPeerBroadcast',
      'receiveBroadcast',
      'endAdoption',
      'observeHooks',
    ])
      expect(seen).not.toContain(workerOnly);
  });

  it("Client's phase cannot be written, and its migration internals are not on it", () => {
    const client = new Client(
      {
        id: 1,
        proto: 'tcp',
        peeraddr: '127.0.0.1',
        peerport: 1,
        sockaddr: '127.0.0.1',
        sockport: 2,
        listener: 'l',
      },
      { write() {}, end() {}, close() {}, destroy() {}, writableLength: 0 },
      // A logger is made only when `log` is read.
      undefined as never,
      () => {},
    );
    expect(() => {
      (client as { phase: string }).phase = 'connected';
    }).toThrow(TypeError);
    expect(client.phase).toBe('accepting');
    expect(membersOf(client)).toEqual(
      [
        'kind',
        'id',
        'proto',
        'peeraddr',
        'peerport',
        'sockaddr',
        'sockport',
        'listener',
        'added',
        'peerhost',
        'connectedAt',
        'accepted',
        'state',
        'input',
        'movable',
        'allowHalfOpen',
        'idle',
        'log',
        'phase',
        'open',
        'outputLength',
        'write',
        'print',
        'shutdown',
        'close',
        'destroy',
        'toString',
      ].sort(),
    );
  });

  it('the package root exports none of what only the supervisor and the worker runtime use', () => {
    const names = Object.keys(root);
    for (const name of [
      'runWorker',
      'Channel',
      'Pending',
      'everyTurn',
      'isNetplexMessage',
      'workerEnv',
      'superviseKey',
      'protocolVersion',
      'findSupervisor',
      'workerHost',
      'clientControl',
    ]) {
      expect(names).not.toContain(name);
      if (name !== 'clientControl') expect(Object.keys(internal)).toContain(name);
    }
  });
});
