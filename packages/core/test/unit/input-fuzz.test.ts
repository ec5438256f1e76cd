/**
 * InputBuffer under a seeded fuzz, against a model (the bytes sent, less those consumed): random
 * streams (random bytes, invalid UTF-8, NUL, \r\n split across chunks, long lines) in random
 * chunkings, consumed by random mixes of lines(), line(), take(), consume(), takeAll() and text().
 * Every call returns what the model says, nothing throws, and the Buffers handed out keep their
 * bytes after later appends (no view is overwritten).
 */
import { describe, expect, it } from 'vitest';
import { InputBuffer } from '../../src/connection/input.js';
import { fuzzRuns, fuzzSeed, mulberry32 } from '../helpers/fuzz.js';

const RUNS = Math.max(50, Math.floor(fuzzRuns / 25));

describe('InputBuffer fuzz', () => {
  it(`${RUNS} random streams in random chunks match the model (NETPLEX_FUZZ_RUNS/25, NETPLEX_FUZZ_SEED=${fuzzSeed})`, () => {
    const random = mulberry32(fuzzSeed);
    const int = (n: number) => Math.floor(random() * n);
    const alphabet = [0x0a, 0x0d, 0x00, 0x41, 0x62, 0xc3, 0xa9, 0xff, 0xe2, 0x82];
    for (let run = 0; run < RUNS; run++) {
      const where = `seed ${fuzzSeed}, stream ${run}`;
      // A stream of bytes: mostly from a small alphabet (so that lines, CRs and broken UTF-8 are
      // common), sometimes a long line.
      const size = int(6) === 0 ? 20_000 + int(80_000) : int(2000);
      const stream = Buffer.alloc(size);
      const longLine = int(3) === 0;
      for (let i = 0; i < size; i++)
        stream[i] = longLine && int(5000) !== 0 ? 0x61 : alphabet[int(alphabet.length)]!;
      const input = new InputBuffer();
      let model = Buffer.alloc(0);
      const handedOut: Array<[Buffer, Buffer]> = [];
      const handOut = (got: Buffer, want: Buffer) => {
        expect(got.equals(want), where).toBe(true);
        handedOut.push([got, Buffer.from(want)]);
      };
      let at = 0;
      while (at < size || model.length > 0) {
        if (at < size && int(3) !== 0) {
          const n = Math.min(size - at, 1 + (int(4) === 0 ? int(70_000) : int(40)));
          // A chunk of its own, as a socket hands over (sometimes a view into a larger buffer).
          const chunk = int(2) === 0 ? Buffer.from(stream.subarray(at, at + n)) : stream.subarray(at, at + n);
          input.append(chunk);
          model = Buffer.concat([model, stream.subarray(at, at + n)]);
          at += n;
        }
        expect(input.length, where).toBe(model.length);
        switch (int(7)) {
          case 0: {
            for (const line of input.lineBuffers()) {
              const nl = model.indexOf(0x0a);
              const end = nl > 0 && model[nl - 1] === 0x0d ? nl - 1 : nl;
              handOut(line, model.subarray(0, end));
              model = model.subarray(nl + 1);
            }
            expect(model.indexOf(0x0a), where).toBe(-1);
            break;
          }
          case 1: {
            const line = input.line('latin1');
            const nl = model.indexOf(0x0a);
            if (nl === -1) expect(line, where).toBeUndefined();
            else {
              const end = nl > 0 && model[nl - 1] === 0x0d ? nl - 1 : nl;
              expect(line, where).toBe(model.subarray(0, end).toString('latin1'));
              model = model.subarray(nl + 1);
            }
            break;
          }
          case 2: {
            const n = int(model.length + 10);
            const got = input.take(n);
            if (n > model.length) expect(got, where).toBeUndefined();
            else {
              handOut(got!, model.subarray(0, n));
              model = model.subarray(n);
            }
            break;
          }
          case 3: {
            const n = int(model.length + 10);
            input.consume(n);
            model = model.subarray(Math.min(n, model.length));
            break;
          }
          case 4:
            if (int(4) === 0) {
              handOut(input.takeAll(), model);
              model = Buffer.alloc(0);
            }
            break;
          case 5:
            expect(input.text('latin1'), where).toBe(model.toString('latin1'));
            expect(() => input.text(), where).not.toThrow();
            break;
          default:
            if (at >= size) {
              handOut(input.takeAll(), model);
              model = Buffer.alloc(0);
            }
        }
      }
      for (const [got, want] of handedOut)
        expect(got.equals(want), `${where}: a Buffer handed out kept its bytes`).toBe(true);
    }
  });
});
