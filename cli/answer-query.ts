import type { Logger } from '../common/logger.js'
import { VerificationError } from '../integrity/errors.js'
import { readVerifyState, type VerifyState } from '../integrity/verify-state.js'
import { getSavedQuery } from '../queries/catalog.js'
import type { ProvenanceStatus } from '../queries/provenance.js'
import { answerOf, executeSavedQuery, parseQueryParams, type QueryAnswer, type QueryResult } from '../queries/saved-query.js'
import type { AppConfig } from './config.js'
import { withStore } from './runtime.js'

/**
 * Answers a saved query for the CLI: validates the parameters before
 * anything opens (a bad parameter runs nothing), runs it on the store or
 * through the process that owns the embedded store, and judges its sources
 * against the verify state, which lives outside ClickHouse.
 */
export async function answerSavedQuery(config: AppConfig, name: string, rawParams: Record<string, unknown>, logger: Logger): Promise<QueryAnswer<Record<string, unknown>>> {
  const query = getSavedQuery(name)
  parseQueryParams(query, rawParams)
  // Read before the store: a broken state file fails the command, not a half answer.
  const verifyState = verifyStateFor(config, logger)
  const context = { subjectKeys: config.subjectKeys }
  const result = await withStore<QueryResult<Record<string, unknown>>>(
    config,
    `readtrail query ${query.name}`,
    logger,
    (store) => executeSavedQuery(store, query, rawParams, context),
    { op: 'query', name: query.name, params: rawParams, subjectKeys: [...config.subjectKeys] },
  )
  return answerOf(query, rawParams, result, verifyState)
}

/**
 * The verify state for this database. A state file that records another
 * database vouches for nothing here: the answer is then unverified, as with
 * no file. A file that cannot be read or parsed is an error.
 */
function verifyStateFor(config: AppConfig, logger: Logger): VerifyState | null {
  try {
    return readVerifyState(config.verifyStatePath, config.store.database)
  } catch (err) {
    const other = err instanceof VerificationError ? err.details?.['database'] : undefined
    if (typeof other !== 'string') throw err
    logger.warn({ path: config.verifyStatePath, recorded: other, database: config.store.database }, 'the verify state is for another database: answers count as unverified')
    return null
  }
}

/** Exit codes scripts can rely on (README "Saved queries"). */
export const QUERY_EXIT = Object.freeze({ verified: 0, unverified: 3, failed: 4 } satisfies Record<ProvenanceStatus, number>)

export function exitCodeOf(answer: { provenance: { status: ProvenanceStatus } }): number {
  return QUERY_EXIT[answer.provenance.status]
}
