import { QueryError } from './errors.js'
import { recordsTouchedByPrincipal } from './records-touched-by-principal.js'
import type { AnySavedQuery } from './saved-query.js'
import { whoTouchedRecord } from './who-touched-record.js'

/** Every saved query, by name. */
export const SAVED_QUERIES: ReadonlyMap<string, AnySavedQuery> = new Map(
  ([recordsTouchedByPrincipal, whoTouchedRecord] as unknown as AnySavedQuery[]).map((q) => [q.name, q]),
)

export function getSavedQuery(name: string): AnySavedQuery {
  const query = SAVED_QUERIES.get(name)
  if (!query) throw new QueryError('QUERY_UNKNOWN', `no saved query named ${JSON.stringify(name)}; known: ${[...SAVED_QUERIES.keys()].join(', ')}`)
  return query
}
