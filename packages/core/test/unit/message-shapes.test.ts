/**
 * The shapes of the messages a worker sends (ipc/message-shapes.ts): every well-formed message of
 * the protocol passes; the malformed ones a worker running arbitrary code could send are named;
 * and a seeded fuzz of random values and mutated messages never throws.
 */
import { describe, expect, it } from 'vitest';
import { workerMessageProblem } from '../../src/ipc/message-shapes.js';
import { type WorkerMessage, workerMessageTypes } from '../../src/ipc/messages.js';
import { fuzzRuns, fuzzSeed, mulberry32 } from '../helpers/fuzz.js';

const conn = {
  id: 7,
  proto: 'tcp',
  peeraddr: '127.0.0.1',
  peerport: 50000,
  sockaddr: '127.0.0.1',
  sockport: 20203,
  listener: '127.0.0.1:20203',
  peerhost: 'localhost',
  connectedAt: 1_790_000_000_000,
  input: 'aGk=',
  timeoutMs: 500,
  idleMs: 20,
  state: { nick: 'x' },
};

/** One well-formed message of each type, with the handle it carries. */
const valid: Array<[WorkerMessage, boolean]> = [
  [{ type: 'netplex:hello', protocol: 2 }, false],
  [{ type: 'netplex:ack', ack: 3 }, false],
  [{ type: 'netplex:hook', hook: 'preLoopHook' }, false],
  [{ type: 'netplex:hook', hook: null }, false],
  [
    {
      type: 'netplex:ready',
      addresses: [
        { proto: 'tcp', address: '127.0.0.1', port: 20203, family: 4 },
        { proto: 'udp', address: '::1', port: 0, family: 6 },
        { proto: 'unix', path: '/tmp/x.sock' },
      ],
    },
    false,
  ],
  [{ type: 'netplex:status', ack: 1, connections: 0, requests: 9 }, false],
  [{ type: 'netplex:endloop' }, false],
  [{ type: 'netplex:fatal', message: 'boom', code: 'MPX_ERR_HOOK' }, false],
  [{ type: 'netplex:server-state', data: null }, false],
  [{ type: 'netplex:server-state', data: { requests: 4, custom: null } }, false],
  [{ type: 'netplex:conn', seq: 1, conn: conn as never }, true],
  [{ type: 'netplex:released', items: [{ id: 7 }, { id: 8, output: 'eA==' }] }, false],
  [{ type: 'netplex:conn-ack', ok: [1, 2], failed: [] }, false],
  [{ type: 'netplex:migrated', migrated: 3, drained: 1, failed: 0, ms: 12.5 }, false],
  [{ type: 'netplex:broadcast', data: 'aGVsbG8K', skip: [3] }, false],
];

describe('workerMessageProblem', () => {
  it('passes one well-formed message of every type', () => {
    expect(new Set(valid.map(([m]) => m.type))).toEqual(new Set(workerMessageTypes));
    for (const [m, handle] of valid) expect(workerMessageProblem(m, handle), m.type).toBeUndefined();
  });

  it.each<[string, unknown, boolean, RegExp]>([
    ['netplex:ready without addresses', { type: 'netplex:ready' }, false, /^addresses: expected a list/],
    [
      'addresses that are a string',
      { type: 'netplex:ready', addresses: 'x' },
      false,
      /^addresses: expected a list, got a string/,
    ],
    [
      'an address with a port out of range',
      { type: 'netplex:ready', addresses: [{ proto: 'tcp', address: 'a', port: 70000, family: 4 }] },
      false,
      /^addresses: \[0\]: port/,
    ],
    ['a reply whose ack is a string', { type: 'netplex:ack', ack: '3' }, false, /^ack: expected a count/],
    [
      'a status with a negative count',
      { type: 'netplex:status', ack: 1, connections: -1, requests: 0 },
      false,
      /^connections/,
    ],
    [
      'a number where a string belongs',
      { type: 'netplex:fatal', message: 42 },
      false,
      /^message: expected a string/,
    ],
    [
      'a list too long',
      { type: 'netplex:conn-ack', ok: new Array(100_001).fill(1), failed: [] },
      false,
      /^ok: a list of 100001 items/,
    ],
    ['a type of no one', { type: 'netplex:nonsense' }, false, /does not know/],
    ['a type that is an inherited name', { type: 'constructor' }, false, /does not know/],
    ['a type named __proto__', JSON.parse('{"type":"__proto__"}'), false, /does not know/],
    ['not an object', 'netplex:ready', false, /not a message/],
    [
      'a handle where none belongs',
      { type: 'netplex:ack', ack: 1 },
      true,
      /handle came with a message that carries none/,
    ],
    ['a connection without its handle', { type: 'netplex:conn', seq: 1, conn }, false, /no socket handle/],
    [
      'a connection whose proto is udp',
      { type: 'netplex:conn', seq: 1, conn: { ...conn, proto: 'udp' } },
      true,
      /^conn: proto/,
    ],
    ['a broadcast without data', { type: 'netplex:broadcast' }, false, /^data/],
    [
      'migrated counts that are not numbers',
      { type: 'netplex:migrated', migrated: '1', drained: 0, failed: 0, ms: 0 },
      false,
      /^migrated/,
    ],
  ])('names %s', (_what, message, handle, problem) => {
    expect(workerMessageProblem(message, handle)).toMatch(problem);
  });

  it(`fuzz: ${fuzzRuns} random and mutated messages never throw; a missing required field is named (NETPLEX_FUZZ_SEED=${fuzzSeed})`, () => {
    const random = mulberry32(fuzzSeed);
    const pool: unknown[] = [
      null,
      -1,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '',
      'x'.repeat(1000),
      {},
      [],
      true,
      [null],
      { a: [{}] },
      JSON.parse('{"__proto__":{"x":1}}'),
    ];
    const any = (): unknown => pool[Math.floor(random() * pool.length)];
    for (let i = 0; i < fuzzRuns; i++) {
      const [sample, handle] = valid[Math.floor(random() * valid.length)]!;
      const m = structuredClone(sample) as unknown as Record<string, unknown>;
      const keys = Object.keys(m).filter((k) => k !== 'type');
      const where = `seed ${fuzzSeed}, run ${i}`;
      switch (Math.floor(random() * 4)) {
        case 0: {
          // A required field (every top-level field of the samples but fatal's code and broadcast's skip) goes.
          const required = keys.filter((k) => k !== 'code' && k !== 'skip' && !(m.type === 'netplex:hello'));
          if (required.length === 0) break;
          const key = required[Math.floor(random() * required.length)]!;
          const hadNull = m[key] === null;
          delete m[key];
          if (!hadNull && !(m.type === 'netplex:hook'))
            expect(workerMessageProblem(m, handle), `${where}: ${m.type} without ${key}`).toMatch(
              new RegExp(`^${key}`),
            );
          break;
        }
        case 1:
          if (keys.length > 0) m[keys[Math.floor(random() * keys.length)]!] = any();
          expect(() => workerMessageProblem(m, random() < 0.5), where).not.toThrow();
          break;
        case 2:
          m.type = random() < 0.5 ? `netplex:${random().toString(36).slice(2)}` : any();
          expect(workerMessageProblem(m, handle), where).toBeDefined();
          break;
        default:
          expect(() => workerMessageProblem(any(), random() < 0.5), where).not.toThrow();
      }
    }
  });
});
