import type { Store } from '../store/store.js'
import { collectInDb } from './collect-in-db.js'
import { collectIndependent } from './collect-independent.js'
import type { Facts, FactsRequest } from './facts.js'
import type { VerificationReport } from './report.js'
import { verifyLog, type VerifyOptions } from './verify.js'

/** The store-side half of verification, in the mode the request names. */
export function collectFacts(store: Store, request: FactsRequest): Promise<Facts> {
  return request.mode === 'independent' ? collectIndependent(store, request) : collectInDb(store, request)
}

/** Verifies a store this process holds. */
export async function verifyStore(store: Store, options: VerifyOptions = {}): Promise<VerificationReport> {
  const outcome = await verifyLog((request) => collectFacts(store, request), store.database, options)
  return outcome.report
}
