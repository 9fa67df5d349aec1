import { emptyChain } from '../consumers/chain.js'
import type { GapAnchors } from '../consumers/repair-rebuild.js'
import type { StoredLink } from '../store/repair-breaks.js'

/** A chain's newest signed checkpoint, as repair anchors on it. */
export interface SignedAnchor {
  seq: number
  hash: Buffer
  offset: bigint
  /** µs: the checkpointed row was stored before it was signed. */
  signedAtMicros: number
}

/** One step of a chain's repair, highest seq first: a gap to rebuild, or a break nothing below can be proved across. */
export type RepairStep =
  | { kind: 'gap'; from: number; to: number; anchors: GapAnchors; readFrom: bigint; readTo: bigint }
  | { kind: 'broken'; seq: number; problem: string }

/**
 * Walks a chain down from its newest signed checkpoint, over the rows whose
 * link breaks (`breaks`, highest seq first; every row between two of them
 * links intact to the one above). Each gap's right side is what the
 * trusted part above it commits to: the checkpoint's hash and offset, or
 * the prev_hash of the row after the gap, which chains up to the
 * checkpoint once every gap above it was proved. A break that is not a gap
 * (an edited row, a rewritten link, a seq stored twice, a row at the
 * checkpoint's seq that is not the signed one) is a step of its own: no
 * gap below it can be proved from this checkpoint.
 */
export function planSignedRepair(chainId: string, cp: SignedAnchor, highest: StoredLink | null, breaks: readonly StoredLink[]): RepairStep[] {
  const steps: RepairStep[] = []
  const genesis = emptyChain(chainId)
  const leftOf = (row: { seq: number; hash: Buffer; offset: bigint; ingestedAt: number } | null) =>
    row ? { left: { chainId, seq: row.seq, hash: row.hash, lastOffset: row.offset }, leftIngestedAt: row.ingestedAt } : { left: genesis, leftIngestedAt: null }
  if (!highest || highest.seq < cp.seq) {
    const below = leftOf(highest)
    steps.push({
      kind: 'gap',
      from: below.left.seq + 1,
      to: cp.seq,
      anchors: { ...below, missing: cp.seq - below.left.seq, rightHash: cp.hash, rightOffset: cp.offset, rightIngestedAt: cp.signedAtMicros },
      readFrom: (below.left.lastOffset ?? -1n) + 1n,
      readTo: cp.offset,
    })
  } else if (!highest.hash.equals(cp.hash) || highest.offset !== cp.offset) {
    steps.push({ kind: 'broken', seq: cp.seq, problem: `the row at seq ${cp.seq} is not the one the newest checkpoint signed (a rewritten history)` })
  }
  for (const b of breaks) {
    if (b.seq > cp.seq) continue
    const beforeSeq = b.before?.seq ?? 0
    if (!b.intact) steps.push({ kind: 'broken', seq: b.seq, problem: `the row at seq ${b.seq} no longer hashes to its stored hash (edited)` })
    if (beforeSeq === b.seq) {
      steps.push({ kind: 'broken', seq: b.seq, problem: `seq ${b.seq} is stored more than once` })
    } else if (beforeSeq + 1 === b.seq) {
      if (b.intact) {
        const what = b.seq === 1 ? 'the first row does not start from the genesis hash' : `its prev_hash is not the hash of the row at seq ${beforeSeq} (a row rewritten or forged)`
        steps.push({ kind: 'broken', seq: b.seq, problem: `at seq ${b.seq} ${what}` })
      }
    } else {
      // Listed even below an edited row: the operator sees every gap, and the edit blocks its proof.
      const below = leftOf(b.before)
      steps.push({
        kind: 'gap',
        from: beforeSeq + 1,
        to: b.seq - 1,
        anchors: { ...below, missing: b.seq - 1 - beforeSeq, rightHash: b.prevHash, rightOffset: null, rightIngestedAt: b.ingestedAt },
        readFrom: (below.left.lastOffset ?? -1n) + 1n,
        readTo: b.offset - 1n,
      })
    }
  }
  return steps
}
