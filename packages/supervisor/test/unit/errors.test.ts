/**
 * The supervisor's error codes: each one builds a SupervisorError carrying it, and the errors page
 * (docs/reference/errors.md) lists every code (and no code that does not exist).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SupervisorError, supervisorCodes } from '../../src/errors.js';

describe('supervisorCodes', () => {
  it.each(supervisorCodes)('%s builds a SupervisorError with that code', (code) => {
    const cause = new Error('underlying');
    const err = new SupervisorError(code, `something about ${code}`, { cause });
    expect(err.code).toBe(code);
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('SupervisorError');
    expect(err.cause).toBe(cause);
  });

  it('lists every code once', () => {
    expect(new Set(supervisorCodes).size).toBe(supervisorCodes.length);
    for (const code of supervisorCodes) expect(code).toMatch(/^SUP_ERR_[A-Z_]+$/);
  });
});

describe('the errors page, docs/reference/errors.md', () => {
  const page = readFileSync(
    join(import.meta.dirname, '..', '..', '..', '..', 'docs', 'reference', 'errors.md'),
    'utf8',
  );

  it.each(supervisorCodes)('lists %s', (code) => {
    expect(page).toMatch(new RegExp(`\\b${code}\\b`));
  });

  it('lists no SUP_ERR_ code that does not exist', () => {
    const known = new Set<string>(supervisorCodes);
    const listed = new Set(page.match(/\bSUP_ERR_[A-Z_]+\b/g) ?? []);
    expect([...listed].filter((code) => !known.has(code))).toEqual([]);
  });
});
