import { ReadtrailError } from '../common/errors.js'
import { collectIndependent } from '../integrity/collect-independent.js'
import type { Facts, FactsRequest } from '../integrity/facts.js'
import type { Finding } from '../integrity/report.js'
import { callOwner, type OwnerTarget } from './owner-api.js'
import { ownerReadStore } from './owner-store.js'

/**
 * `verify --independent` while another process owns the embedded store. The
 * rows come from the owner as stored (its fixed row reads, each answer
 * signed) and are re-hashed, linked and counted here, as when this process
 * holds the store: the owner can refuse, or hand over what the store holds,
 * but never a verdict of its own. Only the query tables' definitions, which
 * only the engine can print, are the owner's (signed) answer.
 *
 * The same two halves integrity/verify-store.ts collectFacts runs on a store
 * this process holds, merged the same way.
 */
export async function collectIndependentThroughOwner(target: OwnerTarget, request: FactsRequest): Promise<Facts> {
  const [facts, altered] = await Promise.all([
    collectIndependent(ownerReadStore(target), request),
    // No socket any more: the owner stopped; never a check silently skipped.
    callOwner<Finding[]>(target, { op: 'query-tables' }) ??
      Promise.reject(new ReadtrailError('STORE_UNAVAILABLE', 'the store owner no longer serves its socket', { details: { unreachable: true } })),
  ])
  return { ...facts, view_findings: [...facts.view_findings, ...altered] }
}
