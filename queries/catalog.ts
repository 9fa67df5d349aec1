import { QueryError } from './errors.js'
import { breachScope } from './breach-scope.js'
import { breachRecords } from './breach-records.js'
import { breachTimeline } from './breach-timeline.js'
import { principalTimeline } from './principal-timeline.js'
import { bulkExtraction } from './bulk-extraction.js'
import { offHoursAccess } from './off-hours-access.js'
import { firstTimeAccess } from './first-time-access.js'
import { readsWithoutPurpose } from './reads-without-purpose.js'
import { topReaders } from './top-readers.js'
import { subjectAccessReport } from './subject-access-report.js'
import { recordsTouchedByPrincipal } from './records-touched-by-principal.js'
import type { AnySavedQuery } from './saved-query.js'
import { whoTouchedRecord } from './who-touched-record.js'
import { unauditedReads } from './unaudited-reads.js'
import { unauditedReadEntries } from './unaudited-read-entries.js'
import { alerts } from './alerts.js'

/** Every saved query, by name, in the order `readtrail query --list` shows them. */
export const SAVED_QUERIES: ReadonlyMap<string, AnySavedQuery> = new Map(
  ([recordsTouchedByPrincipal, whoTouchedRecord, subjectAccessReport, breachScope, breachRecords, breachTimeline, bulkExtraction, offHoursAccess, firstTimeAccess, readsWithoutPurpose, principalTimeline, topReaders, unauditedReads, unauditedReadEntries, alerts] as unknown as AnySavedQuery[]).map((q) => [q.name, q]),
)

export function getSavedQuery(name: string): AnySavedQuery {
  const query = SAVED_QUERIES.get(name)
  if (!query) throw new QueryError('QUERY_UNKNOWN', `no saved query named ${JSON.stringify(name)}; known: ${[...SAVED_QUERIES.keys()].join(', ')}`)
  return query
}
