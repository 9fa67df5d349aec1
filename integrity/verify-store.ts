import type { Store } from '../store/store.js'
import { checkQueryTables } from './check-query-tables.js'
import { collectInDb } from './collect-in-db.js'
import { collectIndependent } from './collect-independent.js'
import { collectSideFacts } from './side-chain-facts.js'
import { dbAuditCompleteness } from '../queries/db-audit-match.js'
import type { Facts, FactsRequest } from './facts.js'
import type { VerificationReport } from './report.js'
import { verifyLog, type VerifyOptions } from './verify.js'

/**
 * The store-side half of verification, in the mode the request names. The
 * query-serving tables' definitions are checked in every run, whatever the
 * mode, range or --skip-views says: a replaced table is cheap to find and
 * would otherwise answer queries unseen between full runs.
 */
export async function collectFacts(store: Store, request: FactsRequest): Promise<Facts> {
  const [facts, altered] = await Promise.all([request.mode === 'independent' ? collectIndependent(store, request) : collectInDb(store, request), checkQueryTables(store)])
  // The side chains are re-hashed by the engine in either mode (a second
  // hasher for them is not written yet); verify says so in independent runs.
  const side = request.side_checkpoint_seqs && request.find_events === null ? await collectSideFacts(store, request.side_checkpoint_seqs, dbAuditCompleteness) : undefined
  return { ...facts, view_findings: [...facts.view_findings, ...altered], ...(side ? { side } : {}) }
}

/** Verifies a store this process holds. */
export async function verifyStore(store: Store, options: VerifyOptions = {}): Promise<VerificationReport> {
  const outcome = await verifyLog((request) => collectFacts(store, request), store.database, options)
  return outcome.report
}
