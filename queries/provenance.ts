import type { VerifyState } from '../integrity/verify-state.js'

/** The rows of one chain an answer was computed from. */
export interface ChainSource {
  chain_id: string
  first_seq: number
  last_seq: number
  /** Events of this chain in the answer's inputs. */
  events: number
}

/**
 * - verified: every source row lies within a range the last verification passed;
 * - unverified: some source rows were never verified (new rows, or no verify run);
 * - failed: some source rows lie in a range whose last verification found damage.
 */
export type ProvenanceStatus = 'verified' | 'unverified' | 'failed'

export interface ChainProvenance extends ChainSource {
  status: ProvenanceStatus
  /** Rows 1..verified_through of the chain passed every check (0: never). */
  verified_through: number
  /** When the last verification of this chain ran, and how; null if never. */
  last_verified_at: string | null
  last_verify_mode: string | null
}

export interface Provenance {
  status: ProvenanceStatus
  chains: ChainProvenance[]
  /** When the verify state was written; null when verification never ran. */
  verify_state_at: string | null
  /** One sentence a reader can act on, in every output format. */
  summary: string
}

const RANK: Record<ProvenanceStatus, number> = { verified: 0, unverified: 1, failed: 2 }

/**
 * Says what an answer stands on, from what `readtrail verify` recorded
 * outside ClickHouse. A chain range reaching into the span of a last run that
 * found damage is failed; otherwise it is verified if it ends at or below the
 * chain's verified_through, and unverified past it.
 */
export function assessProvenance(sources: readonly ChainSource[], state: VerifyState | null): Provenance {
  const chains = sources.map((s): ChainProvenance => {
    const known = state?.chains[s.chain_id]
    if (!known) return { ...s, status: 'unverified', verified_through: 0, last_verified_at: null, last_verify_mode: null }
    const run = known.last_run
    // A failed run covered first_seq..last_seq (an incremental one may start
    // below verified_through): the damage may be in any rows from there on.
    const status: ProvenanceStatus = !run.ok && s.last_seq >= run.first_seq ? 'failed' : s.last_seq <= known.verified_through ? 'verified' : 'unverified'
    return { ...s, status, verified_through: known.verified_through, last_verified_at: run.at, last_verify_mode: run.mode }
  })
  // No rows: the answer claims an absence, which stands on the whole log.
  const start: ProvenanceStatus = chains.length > 0 ? 'verified' : !state ? 'unverified' : Object.values(state.chains).some((c) => !c.last_run.ok) ? 'failed' : 'verified'
  const status = chains.reduce<ProvenanceStatus>((worst, c) => (RANK[c.status] > RANK[worst] ? c.status : worst), start)
  return { status, chains, verify_state_at: state?.updated_at ?? null, summary: summarize(status, chains, state) }
}

function summarize(status: ProvenanceStatus, chains: readonly ChainProvenance[], state: VerifyState | null): string {
  const ranges = chains.map((c) => `${c.chain_id} seq ${c.first_seq}..${c.last_seq}`).join(', ')
  if (chains.length === 0) {
    if (!state) return 'UNVERIFIED: no matching events, but the log has never been verified (run readtrail verify), so the absence is not proven either'
    if (status === 'failed') return `FAILED VERIFICATION: no matching events, but the last verification (${state.updated_at}) found damage in the log, so rows may have been removed`
    return `VERIFIED: no matching events; the log passed its last verification at ${state.updated_at}`
  }
  if (status === 'verified') return `VERIFIED: built on ${ranges}, all within ranges the last verification passed`
  const bad = chains.filter((c) => c.status === status)
  const detail = bad
    .map((c) => (c.verified_through > 0 ? `${c.chain_id} seq ${c.first_seq}..${c.last_seq} (verified only through ${c.verified_through})` : `${c.chain_id} seq ${c.first_seq}..${c.last_seq} (never verified)`))
    .join(', ')
  if (status === 'failed') return `FAILED VERIFICATION: this answer uses rows in ranges whose last verification found damage: ${detail}; do not rely on it before investigating (readtrail verify)`
  return `UNVERIFIED: this answer uses rows not yet verified: ${detail}; run readtrail verify and ask again to stand behind it`
}
