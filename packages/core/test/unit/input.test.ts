import { describe, expect, it } from 'vitest';
import { InputBuffer } from '../../src/connection/input.js';

function buf(...chunks: Array<string | Buffer>): InputBuffer {
  const b = new InputBuffer();
  for (const c of chunks) b.append(typeof c === 'string' ? Buffer.from(c) : c);
  return b;
}

describe('InputBuffer', () => {
  it('yields complete lines with LF or CRLF and keeps the partial rest', () => {
    const b = buf('a\r\nb\nc\r', '\nd');
    expect([...b.lines()]).toEqual(['a', 'b', 'c']);
    expect(b.text()).toBe('d');
    b.append(Buffer.from('e\n'));
    expect(b.line()).toBe('de');
    expect(b.length).toBe(0);
  });

  it('keeps a lone CR inside a line and an empty line as empty', () => {
    expect([...buf('x\ry\n\n\r\n').lines()]).toEqual(['x\ry', '', '']);
  });

  it('splits a multi-byte character across chunks without damage', () => {
    const euro = Buffer.from('€\n');
    const b = buf(euro.subarray(0, 1), euro.subarray(1, 2));
    expect(b.line()).toBeUndefined();
    b.append(euro.subarray(2));
    expect(b.line()).toBe('€');
  });

  it('returns lines as exact bytes, invalid UTF-8 included', () => {
    const raw = Buffer.from([0xff, 0xfe, 0x0a]);
    expect(buf(raw).lineBuffer()).toEqual(Buffer.from([0xff, 0xfe]));
  });

  it('takes fixed byte counts only when they are all there', () => {
    const b = buf('abcdef');
    expect(b.take(4)?.toString()).toBe('abcd');
    expect(b.take(3)).toBeUndefined();
    expect(b.length).toBe(2);
    expect(b.takeAll().toString()).toBe('ef');
    expect(b.length).toBe(0);
  });

  it('consumes from the left and refuses bad counts', () => {
    const b = buf('hello');
    b.consume(2);
    expect(b.text()).toBe('llo');
    b.consume(100);
    expect(b.length).toBe(0);
    expect(() => b.consume(-1)).toThrow(RangeError);
    expect(() => b.take(1.5)).toThrow(RangeError);
  });

  it('does not copy a chunk appended to an empty buffer', () => {
    const chunk = Buffer.from('zero copy');
    const b = buf(chunk);
    expect(b.takeAll().buffer).toBe(chunk.buffer);
  });

  it('finds a line end after a long partial line without rescanning from the start', () => {
    const b = new InputBuffer();
    for (let i = 0; i < 1000; i++) b.append(Buffer.alloc(100, 'a'));
    expect(b.line()).toBeUndefined();
    b.append(Buffer.from('\nrest'));
    expect(b.line()?.length).toBe(100_000);
    expect(b.text()).toBe('rest');
  });
});
