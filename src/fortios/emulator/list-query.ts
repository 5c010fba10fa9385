/**
 * The `filter` and `format` query parameters of CMDB table GETs (reference §2.2): several `filter`
 * parameters AND together, commas inside one OR together; `==` matches case-insensitively, `=@` is
 * "contains"; `format=a|b` keeps only those fields. Filters apply to top-level scalar fields.
 */
import { Row } from './render';

type Test = (row: Row) => boolean;

const CLAUSE = /^([\w-]+)(==|!=|=@|!@|<=|>=|<|>)(.*)$/s;

/** Returns the matching, formatted rows, or undefined when a filter cannot be parsed. */
export function applyListQuery(rows: Row[], query: URLSearchParams): Row[] | undefined {
  const tests: Test[] = [];
  for (const filter of query.getAll('filter')) {
    const alternatives = filter.split(',').map(parseClause);
    if (alternatives.some((t) => t === undefined)) return undefined;
    tests.push((row) => alternatives.some((t) => t!(row)));
  }
  const matched = rows.filter((row) => tests.every((t) => t(row)));
  const format = query.get('format');
  return format ? matched.map((row) => pick(row, format.split('|'))) : matched;
}

function parseClause(clause: string): Test | undefined {
  const m = CLAUSE.exec(clause);
  if (!m) return undefined;
  const [, field, op, raw] = m as unknown as [string, string, string, string];
  const wanted = raw.toLowerCase();
  const value = (row: Row): string | undefined => {
    const v = row[field];
    return typeof v === 'string' || typeof v === 'number' ? String(v).toLowerCase() : undefined;
  };
  switch (op) {
    case '==':
      return (row) => value(row) === wanted;
    case '!=':
      return (row) => value(row) !== wanted;
    case '=@':
      return (row) => value(row)?.includes(wanted) ?? false;
    case '!@':
      return (row) => !(value(row)?.includes(wanted) ?? false);
    default:
      return (row) => compareNumbers(Number(value(row)), op, Number(raw));
  }
}

function compareNumbers(a: number, op: string, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return false;
  return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
}

function pick(row: Row, fields: string[]): Row {
  const out: Row = { q_origin_key: row.q_origin_key };
  for (const f of fields) if (f in row) out[f] = row[f];
  return out;
}
