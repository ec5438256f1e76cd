import { describe, expect, it } from 'vitest';
import { serverOptions } from '../../src/options.js';
import { editDistance, suggestKey } from '../../src/suggest.js';

const known = Object.keys(serverOptions);

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['port', '', 4],
    ['', 'port', 4],
    ['port', 'port', 0],
    ['prot', 'port', 1], // a transposition is one edit
    ['log_lvel', 'log_level', 1],
    ['kitten', 'sitting', 3],
    ['ca', 'abc', 3], // optimal string alignment, not full Damerau
    ['ünï', 'uni', 2],
  ])('%j to %j is %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('suggestKey', () => {
  it.each([
    ['log_lvel', 'log_level'],
    ['loglevel', 'log_level'],
    ['log-file', 'log_file'],
    ['LOG_LEVEL', 'log_level'],
    ['prot', 'port'],
    ['hots', 'host'],
    ['usr', 'user'],
    ['pidfile', 'pid_file'],
    ['cidr-allow', 'cidr_allow'],
    ['max_conections', 'max_connections'],
    ['backgroud', 'background'],
  ])('%j suggests %j', (typo, expected) => {
    expect(suggestKey(typo, known)).toBe(expected);
  });

  it.each([['frobnicate'], ['x'], [''], ['verbose'], ['log4perl_conf']])(
    '%j is too far from any key',
    (key) => {
      expect(suggestKey(key, known)).toBeUndefined();
    },
  );

  it('breaks ties by the order of the known keys', () => {
    expect(suggestKey('ab', ['aa', 'bb'])).toBe('aa');
    expect(suggestKey('ab', ['bb', 'aa'])).toBe('bb');
  });

  it('returns undefined when there is nothing to suggest', () => {
    expect(suggestKey('port', [])).toBeUndefined();
  });
});
