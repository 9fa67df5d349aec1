import type { Store } from '../store/store.js'
import { checkQueryTables } from './check-query-tables.js'
import { collectInDb } from './collect-in-db.js'
import { collectIndependent } from './collect-independent.js'
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
  return { ...facts, view_findings: [...facts.view_findings, ...altered] }
}

/** Verifies a store this process holds. */
export async function verifyStore(store: Store, options: VerifyOptions = {}): Promise<VerificationReport> {
  const outcome = await verifyLog((request) => collectFacts(store, request), store.database, options)
  return outcome.report
}
