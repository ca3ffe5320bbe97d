// The reasons table of docs/operations.md, rendered from the catalog (src/core/reasons.ts):
// `npm run schema` writes it between the markers; test/unit/reasons.test.ts fails when it is stale.
import { ALLOW_REASONS, DENY_ERRORS, DENY_REASONS, type DenyReason } from '../src/core/reasons.ts';

export const BEGIN = '<!-- reasons table: generated from src/core/reasons.ts by `npm run schema` -->';
export const END = '<!-- end of reasons table -->';

export function renderReasonsTable(): string {
  const rows = ['| reason | status | `error` | meaning |', '|---|---|---|---|'];
  for (const [reason, meaning] of Object.entries(ALLOW_REASONS)) rows.push(`| \`${reason}\` | 200 | — | ${meaning} |`);
  for (const reason of Object.keys(DENY_REASONS) as DenyReason[]) {
    const { error, meaning } = DENY_REASONS[reason];
    rows.push(`| \`${reason}\` | ${DENY_ERRORS[error].status} | \`${error}\` | ${meaning.replaceAll('|', '\\|')} |`);
  }
  return `${BEGIN}\n${rows.join('\n')}\n${END}`;
}

/** `doc` with its reasons table replaced by the current one. */
export function withReasonsTable(doc: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start === -1 || end === -1) throw new Error('docs/operations.md: the reasons table markers are missing');
  return doc.slice(0, start) + renderReasonsTable() + doc.slice(end + END.length);
}
