import { affectsAnswers, isPseudoChain, type VerifyState } from '../integrity/verify-state.js'

/** The rows of one chain an answer was computed from. */
export interface ChainSource {
  chain_id: string
  first_seq: number
  last_seq: number
  /** Events of this chain in the answer's inputs. */
  events: number
}

/**
 * - verified: every source row lies within a range the last verification passed and a signed checkpoint covers;
 * - unverified: some source rows are signed but not verified yet (new rows, or no verify run);
 * - unsigned: some source rows lie after their chain's newest valid signed checkpoint (or the chain has none):
 *   nothing outside ClickHouse vouches for them yet;
 * - failed: some source rows lie in a range a verification found damaged and no covering run cleared,
 *   or the query-time re-check found the query tables disagree with access_log.
 */
export type ProvenanceStatus = 'verified' | 'unverified' | 'unsigned' | 'failed'

/** Worst first: failed > unsigned > unverified > verified. */
export const PROVENANCE_RANK: Readonly<Record<ProvenanceStatus, number>> = Object.freeze({ verified: 0, unverified: 1, unsigned: 2, failed: 3 })

export interface ChainProvenance extends ChainSource {
  status: ProvenanceStatus
  /** Rows 1..verified_through of the chain passed every check and are signed (0: never). */
  verified_through: number
  /** Newest valid signed checkpoint's seq at query time (0: none); null when not looked up. */
  signed_through: number | null
  /** When the run that proved verified_through ran; null if never. */
  last_verified_at: string | null
  /** How old that proof is at answer time, in ms; null if never. */
  proof_age_ms: number | null
  last_verify_mode: string | null
}

/** A query-time re-check of the query-serving tables against access_log. */
export interface ConsistencyCheck {
  ok: boolean
  problems: string[]
}

export interface ProvenanceOptions {
  /** The query-time re-check; ok === false makes the answer failed, with the problems in the summary. */
  consistency?: ConsistencyCheck
  /**
   * Per chain, the seq of its newest valid signed checkpoint, read at query
   * time from the checkpoint log. Rows above it are unsigned. Without it, the
   * highest checkpoint the verify state recorded stands in (and a chain the
   * state does not know is unverified, not unsigned).
   */
  signedThrough?: Record<string, number>
  /** @default Date.now() */
  now?: number
}

export interface Provenance {
  status: ProvenanceStatus
  chains: ChainProvenance[]
  /** When the verify state was written; null when verification never ran. */
  verify_state_at: string | null
  /** Age of the oldest proof the answer stands on (for an empty answer: of the state); null when none. */
  proof_age_ms: number | null
  /** The query-time re-check, when one ran. */
  consistency?: ConsistencyCheck
  /** One sentence a reader can act on, in every output format. */
  summary: string
}

const DAY_MS = 86_400_000

/**
 * Says what an answer stands on, from what `readtrail verify` recorded (and
 * signed) outside ClickHouse and, when given, the checkpoints signed since. A
 * chain range reaching into an open failure's span is failed; rows after the
 * newest signature are unsigned; rows up to verified_through are verified;
 * the rest is unverified. The worst chain decides.
 *
 * Only failures that can make an answer wrong count (affectsAnswers): a
 * dead-lettered producer hole is an event the writer refused, with a signed
 * dead letter, while every stored row and every skipped offset is proved by
 * the chain checks on their own. No stored row an answer was computed from
 * is in doubt because of it, and the hole sits at an arbitrary row (where
 * that producer's next event happened to be stored) that says nothing about
 * which answers the refused event would have matched. Failing every answer
 * over that chain, forever, would let one hostile message blind every
 * saved query; the hole stays a finding in every verify report instead,
 * until an operator acknowledges it.
 */
export function assessProvenance(sources: readonly ChainSource[], state: VerifyState | null, options: ProvenanceOptions = {}): Provenance {
  const now = options.now ?? Date.now()
  const globalFailure = state ? Object.entries(state.chains).some(([id, c]) => isPseudoChain(id) && c.failures.some(affectsAnswers)) : false
  const chains = sources.map((s): ChainProvenance => {
    const known = state?.chains[s.chain_id]
    const signed = options.signedThrough ? (options.signedThrough[s.chain_id] ?? 0) : (known?.checkpoint_high?.seq ?? null)
    const verifiedAt = known?.verified_at ?? null
    const base = {
      ...s,
      verified_through: known?.verified_through ?? 0,
      signed_through: options.signedThrough ? (signed ?? 0) : null,
      last_verified_at: verifiedAt,
      proof_age_ms: verifiedAt ? Math.max(0, now - Date.parse(verifiedAt)) : null,
      last_verify_mode: known?.last_run?.mode ?? null,
    }
    // An open failure from seq F: the damage may be in any rows from F on.
    const failed = globalFailure || (known?.failures ?? []).some((f) => affectsAnswers(f) && s.last_seq >= f.from_seq)
    if (failed) return { ...base, status: 'failed' }
    if (signed !== null && s.last_seq > signed) return { ...base, status: 'unsigned' }
    if (known && s.last_seq <= known.verified_through) return { ...base, status: 'verified' }
    return { ...base, status: 'unverified' }
  })
  const inconsistent = options.consistency?.ok === false
  // No rows: the answer claims an absence, which stands on the whole log.
  const start: ProvenanceStatus = inconsistent
    ? 'failed'
    : chains.length > 0
      ? 'verified'
      : !state
        ? 'unverified'
        : Object.values(state.chains).some((c) => c.failures.some(affectsAnswers))
          ? 'failed'
          : 'verified'
  const status = chains.reduce<ProvenanceStatus>((worst, c) => (PROVENANCE_RANK[c.status] > PROVENANCE_RANK[worst] ? c.status : worst), start)
  const ages = chains.map((c) => c.proof_age_ms).filter((a): a is number => a !== null)
  const proofAge = chains.length > 0 ? (ages.length > 0 ? Math.max(...ages) : null) : state ? Math.max(0, now - Date.parse(state.updated_at)) : null
  const summary = withAge(summarize(status, chains, state, options.consistency), status, proofAge)
  return { status, chains, verify_state_at: state?.updated_at ?? null, proof_age_ms: proofAge, ...(options.consistency ? { consistency: options.consistency } : {}), summary }
}

// Where the proof is more than a day old, say so: a periodic job that stopped
// running must not leave week-old verdicts looking current.
function withAge(summary: string, status: ProvenanceStatus, ageMs: number | null): string {
  if (ageMs === null || ageMs <= DAY_MS || status === 'failed') return summary
  const days = Math.floor(ageMs / DAY_MS)
  return `${summary} (the proof is ${days} day${days === 1 ? '' : 's'} old)`
}

function summarize(status: ProvenanceStatus, chains: readonly ChainProvenance[], state: VerifyState | null, consistency: ConsistencyCheck | undefined): string {
  if (consistency?.ok === false) {
    return `FAILED VERIFICATION: the query tables this answer was read from disagree with access_log (${consistency.problems.slice(0, 5).join('; ')}${consistency.problems.length > 5 ? `; and ${consistency.problems.length - 5} more` : ''}); do not rely on it before investigating (readtrail verify)`
  }
  const ranges = chains.map((c) => `${c.chain_id} seq ${c.first_seq}..${c.last_seq}`).join(', ')
  if (chains.length === 0) {
    if (!state) return 'UNVERIFIED: no matching events, but the log has never been verified (run readtrail verify), so the absence is not proven either'
    if (status === 'failed') return `FAILED VERIFICATION: no matching events, but a verification found damage in the log that no later run covering it has cleared (state of ${state.updated_at}), so rows may have been removed`
    return `VERIFIED: no matching events; the log passed its last verification at ${state.updated_at}`
  }
  if (status === 'verified') return `VERIFIED: built on ${ranges}, all within signed ranges the last verification passed`
  const bad = chains.filter((c) => c.status === status)
  const detail = bad.map((c) => `${c.chain_id} seq ${c.first_seq}..${c.last_seq} (${why(c)})`).join(', ')
  if (status === 'failed') return `FAILED VERIFICATION: this answer uses rows in ranges where verification found damage no covering run has cleared: ${detail}; do not rely on it before investigating (readtrail verify)`
  if (status === 'unsigned') return `UNSIGNED: this answer uses rows after their chain's newest signed checkpoint, which nothing outside the store vouches for yet: ${detail}; wait for the next checkpoint, run readtrail verify and ask again`
  return `UNVERIFIED: this answer uses rows not yet verified: ${detail}; run readtrail verify and ask again to stand behind it`
}

function why(c: ChainProvenance): string {
  if (c.status === 'unsigned') return c.signed_through ? `signed only through ${c.signed_through}` : 'no signed checkpoint'
  return c.verified_through > 0 ? `verified only through ${c.verified_through}` : 'never verified'
}
