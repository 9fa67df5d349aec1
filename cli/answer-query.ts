import { isReadtrailError } from '../common/errors.js'
import { StoreError } from '../store/errors.js'
import type { Logger } from '../common/logger.js'
import { loadPublicKey, type LoadedPublicKey } from '../checkpoints/keys.js'
import { VerificationError } from '../integrity/errors.js'
import { readVerifyState, type VerifyState } from '../integrity/verify-state.js'
import { getSavedQuery } from '../queries/catalog.js'
import { assessProvenance, type ProvenanceStatus } from '../queries/provenance.js'
import { answerOf, executeSavedQuery, parseQueryParams, type QueryAnswer, type QueryResult } from '../queries/saved-query.js'
import type { AppConfig } from './config.js'
import { assertQueryParams } from './param-check.js'
import { withStore } from './runtime.js'
import { readSignedThrough } from './signed-through.js'

/**
 * Answers a saved query for the CLI: validates the parameters before
 * anything opens (a bad parameter runs nothing), runs it on the store or
 * through the process that owns the embedded store, and judges its sources
 * against the signed verify state and the checkpoints signed since, both
 * kept outside ClickHouse.
 */
export async function answerSavedQuery(config: AppConfig, name: string, rawParams: Record<string, unknown>, logger: Logger): Promise<QueryAnswer<Record<string, unknown>>> {
  const query = getSavedQuery(name)
  // The CLI's words first (nearest names, formats, examples); the query's own check is the same rule.
  assertQueryParams(query, rawParams)
  parseQueryParams(query, rawParams)
  // Read before the store: an untrusted or broken state file fails the command, not a half answer.
  const verifyState = verifyStateFor(config, logger)
  const context = { subjectKeys: config.subjectKeys }
  const result = await withStore<QueryResult<Record<string, unknown>>>(
    config,
    `readtrail query ${query.name}`,
    logger,
    (store) => executeSavedQuery(store, query, rawParams, context),
    { op: 'query', name: query.name, params: rawParams, subjectKeys: [...config.subjectKeys] },
  ).catch((err: unknown) => {
    throw missingTable(err, query.name, config.store.database)
  })
  const answer = answerOf(query, rawParams, result, verifyState)
  // Which rows a signature covers is read now, not at the last verify: rows
  // written after the newest valid checkpoint are unsigned whatever the state says.
  const signedThrough = await readSignedThrough({
    logPath: config.checkpoints.logPath,
    database: config.store.database,
    key: optionalKey(config.checkpoints.publicKeyPath),
    chains: result.sources.map((s) => s.chain_id),
  })
  const consistency = answer.provenance.consistency
  return { ...answer, provenance: assessProvenance(result.sources, verifyState, { signedThrough, ...(consistency ? { consistency } : {}) }) }
}

/**
 * The side streams' tables (db_audit_log, alert_log) are created by
 * `readtrail consume` when it first takes their streams up: a store that
 * never did has none, and the engine's "unknown table" would read as a
 * broken store. Said plainly, with the same code.
 */
function missingTable(err: unknown, query: string, database: string): unknown {
  if (!isReadtrailError(err) || err.details?.['clickhouse_error_type'] !== 'UNKNOWN_TABLE') return err
  return new StoreError(err.code, `readtrail query ${query}: a table it reads is not in database ${database}; db_audit_log and alert_log exist once readtrail consume has taken up the database-audit and alert streams`, {
    cause: err,
    details: err.details,
  })
}

/** A public key that is not there yet is null (nothing was signed with it); an unreadable or wrong one is an error. */
function optionalKey(path: string): LoadedPublicKey | null {
  try {
    return loadPublicKey(path)
  } catch (err) {
    if (isReadtrailError(err) && err.code === 'CHECKPOINT_KEY_MISSING') return null
    throw err
  }
}

/**
 * The verify state for this database, believed only under the verifier's
 * signature. A state that is unsigned, edited or signed by another key fails
 * the command with VERIFY_STATE_UNTRUSTED (exit 2) rather than answering with
 * a quieter status: whoever edited it wanted an answer to look better, and
 * a loud refusal until a full `readtrail verify` re-signs it is the only
 * response that cannot be misread. A (signed) state that records another
 * database vouches for nothing here: the answer is then unverified, as with
 * no file.
 */
function verifyStateFor(config: AppConfig, logger: Logger): VerifyState | null {
  try {
    return readVerifyState(config.verifyStatePath, config.store.database, optionalKey(config.verifier.publicKeyPath))
  } catch (err) {
    const other = err instanceof VerificationError && err.code === 'VERIFY_STATE_INVALID' ? err.details?.['database'] : undefined
    if (typeof other !== 'string') throw err
    logger.warn({ path: config.verifyStatePath, recorded: other, database: config.store.database }, 'the verify state is for another database: answers count as unverified')
    return null
  }
}

/** Exit codes scripts can rely on (README "Saved queries"). */
export const QUERY_EXIT = Object.freeze({ verified: 0, unverified: 3, failed: 4, unsigned: 5 } satisfies Record<ProvenanceStatus, number>)

export function exitCodeOf(answer: { provenance: { status: ProvenanceStatus } }): number {
  return QUERY_EXIT[answer.provenance.status]
}
