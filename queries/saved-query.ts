import type { z } from 'zod'
import type { Store } from '../store/store.js'
import { namedIssues } from '../common/zod-issues.js'
import { QueryError } from './errors.js'

/**
 * A saved query: its SQL with `{name:Type}` placeholders bound server-side, the
 * zod schema of its parameters, and a one-line description. Values never
 * become SQL text; only table names (from validated config) are spliced in.
 */
export interface SavedQuery<P extends z.ZodObject, Row> {
  readonly name: string
  readonly description: string
  readonly params: P
  /** SQL for the given store; `{param:Type}` placeholders only. */
  sql(store: Store): string
  /** Parsed parameters → the values bound to the placeholders. */
  bind(params: z.output<P>): Record<string, unknown>
  /** Column order for table and CSV output. */
  readonly columns: readonly (keyof Row & string)[]
  /** Typed rows; reference `Row` so inference keeps it. */
  readonly _row?: Row
}

export type AnySavedQuery = SavedQuery<z.ZodObject, Record<string, unknown>>

export function defineQuery<P extends z.ZodObject, Row>(query: SavedQuery<P, Row>): SavedQuery<P, Row> {
  return Object.freeze(query)
}

/** Validates parameters (every problem named at once), then runs the query. */
export async function runSavedQuery<P extends z.ZodObject, Row>(
  store: Store,
  query: SavedQuery<P, Row>,
  rawParams: unknown,
): Promise<Row[]> {
  const params = parseQueryParams(query, rawParams)
  return store.queryRows<Row>(query.sql(store), query.bind(params))
}

export function parseQueryParams<P extends z.ZodObject, Row>(query: SavedQuery<P, Row>, rawParams: unknown): z.output<P> {
  const parsed = query.params.safeParse(rawParams)
  if (!parsed.success) {
    const issues = namedIssues(parsed.error, '(params)').map((i) => ({ param: i.key, problem: i.problem }))
    throw new QueryError('QUERY_PARAM_INVALID', `${query.name}: ${issues.map((i) => `${i.param}: ${i.problem}`).join('; ')}`, {
      details: { query: query.name, issues },
    })
  }
  return parsed.data
}
