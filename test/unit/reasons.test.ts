// The reason catalog (src/core/reasons.ts) is complete, used and documented: every reason the
// code produces is typed against it, so these tests check the other directions.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOW_REASONS, DENY_ERRORS, DENY_REASONS, type DenyReason } from '../../src/core/reasons.ts';
import { renderReasonsTable, withReasonsTable } from '../../scripts/reasons-table.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('reason catalog', () => {
  it('docs/operations.md has the reasons table of the current catalog (run `npm run schema`)', () => {
    const doc = readFileSync('docs/operations.md', 'utf8');
    expect(doc).toContain(renderReasonsTable());
    expect(withReasonsTable(doc)).toBe(doc);
  });

  it('every reason has an error class of the table and a one-line meaning', () => {
    for (const [reason, { error, meaning }] of Object.entries(DENY_REASONS)) {
      expect(Object.keys(DENY_ERRORS), reason).toContain(error);
      expect(meaning.trim().length, reason).toBeGreaterThan(5);
      expect(meaning, reason).not.toContain('\n');
    }
    for (const reason of Object.keys(ALLOW_REASONS)) expect(Object.keys(DENY_REASONS)).not.toContain(reason);
  });

  it('every reason in the catalog is produced somewhere in src/ (no stale rows)', () => {
    const code = sources('src')
      .filter((f) => !f.endsWith(join('core', 'reasons.ts')))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const unused = (Object.keys(DENY_REASONS) as DenyReason[]).filter((r) => !code.includes(`'${r}'`));
    expect(unused).toEqual([]);
  });
});
