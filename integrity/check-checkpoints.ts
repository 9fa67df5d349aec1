import type { KeyObject } from 'node:crypto'
import { checkpointDigest, GENESIS_CHECKPOINT, isValidSignature, type SignedCheckpoint } from '../checkpoints/checkpoint.js'
import type { Finding } from './report.js'

/** One copy of the checkpoints, as read (every field attacker-controlled). */
export interface CheckpointSource {
  kind: 'file' | 'topic'
  /** The file path or topic name, for messages. */
  where: string
  missing: boolean
  /** `at`: "line 12" or "offset 40". */
  entries: readonly { at: string; checkpoint: SignedCheckpoint }[]
  unreadable: readonly { at: string; problem: string }[]
}

export interface VerifyingKey {
  publicKey: KeyObject
  keyId: string
}

export interface CheckpointAnalysis {
  findings: Finding[]
  /** Per chain, the checkpoints whose signature verified, by index (one per index). */
  trusted: Map<string, SignedCheckpoint[]>
  /** Distinct checkpoints of this database across the sources. */
  total: number
  valid: number
  warnings: string[]
}

interface Claimed {
  at: string
  checkpoint: SignedCheckpoint
  valid: boolean
}

/**
 * Checks the checkpoints themselves, before any row is compared with them:
 * every signature, each chain of checkpoints (indexes 1, 2, 3… each linking
 * to the digest of the one before), and the file against its Kafka copy.
 * Returns the checkpoints that can be trusted to judge the rows.
 */
export function analyseCheckpoints(sources: { file: CheckpointSource | null; topic: CheckpointSource | null }, key: VerifyingKey, database: string): CheckpointAnalysis {
  const findings: Finding[] = []
  const warnings: string[] = []
  const perSource = new Map<'file' | 'topic', Map<string, Map<number, Claimed>>>()
  const seen = new Set<string>()
  let valid = 0

  for (const source of [sources.file, sources.topic]) {
    if (!source) continue
    for (const u of source.unreadable) {
      findings.push({ chain_id: `(checkpoint ${source.kind})`, seq: 0, kind: 'checkpoint_unreadable', detail: `${source.where} ${u.at}: ${u.problem}` })
    }
    const chains = new Map<string, Map<number, Claimed>>()
    perSource.set(source.kind, chains)
    for (const { at, checkpoint: cp } of source.entries) {
      if (cp.database !== database) continue
      const ok = cp.key_id === key.keyId && isValidSignature(cp, key.publicKey)
      const identity = `${cp.chain_id}\u0000${cp.index}\u0000${cp.sig}`
      if (!seen.has(identity)) {
        seen.add(identity)
        if (ok) valid += 1
      }
      if (!ok) {
        const why = cp.key_id !== key.keyId ? `signed by another key (${cp.key_id.slice(0, 16)}…)` : 'its signature does not match its content: edited or forged'
        findings.push({ chain_id: cp.chain_id, seq: cp.seq, kind: 'checkpoint_invalid', detail: `checkpoint #${cp.index} in ${source.where} ${at} is ${why}` })
      }
      const byIndex = chains.get(cp.chain_id) ?? new Map<number, Claimed>()
      chains.set(cp.chain_id, byIndex)
      const earlier = byIndex.get(cp.index)
      // The same checkpoint twice is a publish retry, not damage.
      if (earlier && earlier.checkpoint.sig === cp.sig && earlier.valid === ok) continue
      if (earlier) {
        findings.push({
          chain_id: cp.chain_id,
          seq: cp.seq,
          kind: 'checkpoint_chain_broken',
          detail: `${source.where} holds checkpoint #${cp.index} twice (${earlier.at} and ${at})`,
        })
        if (earlier.valid || !ok) continue
      }
      byIndex.set(cp.index, { at, checkpoint: cp, valid: ok })
    }
    for (const [chainId, byIndex] of chains) findings.push(...checkLinks(chainId, byIndex, source.where))
  }

  const file = perSource.get('file')
  const topic = perSource.get('topic')
  if (sources.file && sources.topic && file && topic) findings.push(...compareCopies(file, topic, sources.file, sources.topic, warnings))

  const trusted = new Map<string, SignedCheckpoint[]>()
  for (const chains of [file, topic]) {
    for (const [chainId, byIndex] of chains ?? []) {
      const list = trusted.get(chainId) ?? []
      for (const c of byIndex.values()) if (c.valid && !list.some((t) => t.index === c.checkpoint.index)) list.push(c.checkpoint)
      trusted.set(chainId, list)
    }
  }
  for (const list of trusted.values()) list.sort((a, b) => a.index - b.index)
  return { findings, trusted, total: seen.size, valid, warnings }
}

/**
 * Within one copy, every index from 1 to the highest must be present and each
 * valid checkpoint must link to the digest of the valid one before it. An
 * index held by an invalid checkpoint is not a hole: that checkpoint is
 * reported once, as invalid.
 */
function checkLinks(chainId: string, byIndex: Map<number, Claimed>, where: string): Finding[] {
  const findings: Finding[] = []
  const indexes = [...byIndex.keys()].sort((a, b) => a - b)
  let expected = 1
  let previous: Claimed | undefined
  for (const index of indexes) {
    const c = byIndex.get(index)!
    if (index > expected) {
      const hole = index - expected === 1 ? `#${expected} is` : `#${expected}..#${index - 1} are`
      findings.push({ chain_id: chainId, seq: c.checkpoint.seq, kind: 'checkpoint_chain_broken', detail: `checkpoint ${hole} missing from ${where} before #${index}` })
    } else if (c.valid && previous?.valid && previous.checkpoint.index === index - 1 && c.checkpoint.prev !== checkpointDigest(previous.checkpoint)) {
      findings.push({ chain_id: chainId, seq: c.checkpoint.seq, kind: 'checkpoint_chain_broken', detail: `checkpoint #${index} in ${where} does not link to #${index - 1}: one of them was replaced` })
    } else if (c.valid && index === 1 && c.checkpoint.prev !== GENESIS_CHECKPOINT) {
      findings.push({ chain_id: chainId, seq: c.checkpoint.seq, kind: 'checkpoint_chain_broken', detail: `checkpoint #1 in ${where} links to a predecessor: earlier checkpoints were removed` })
    }
    if (c.valid && previous?.valid && c.checkpoint.seq < previous.checkpoint.seq) {
      findings.push({ chain_id: chainId, seq: c.checkpoint.seq, kind: 'checkpoint_chain_broken', detail: `checkpoint #${index} in ${where} vouches for an older seq than #${previous.checkpoint.index}` })
    }
    previous = c
    expected = index + 1
  }
  return findings
}

/**
 * The writer fsyncs a checkpoint to the file before publishing it, so the
 * Kafka copy can lag the file but never lead it: a checkpoint in Kafka beyond
 * the file's last index means the file lost its newest lines.
 */
function compareCopies(
  file: Map<string, Map<number, Claimed>>,
  topic: Map<string, Map<number, Claimed>>,
  fileSource: CheckpointSource,
  topicSource: CheckpointSource,
  warnings: string[],
): Finding[] {
  const findings: Finding[] = []
  // One copy holding nothing of this database while the other holds
  // checkpoints: it was deleted or emptied (the writer writes the file first
  // and the topic right after, every round). Said once per chain, at its
  // first checkpoint the empty copy lacks.
  const emptyCopy = file.size === 0 ? { empty: fileSource, full: topicSource, held: topic } : topic.size === 0 ? { empty: topicSource, full: fileSource, held: file } : null
  if (emptyCopy) {
    const what = emptyCopy.empty.missing ? (emptyCopy.empty.kind === 'file' ? 'is gone' : 'does not exist') : 'holds no checkpoint of this database'
    for (const [chainId, byIndex] of emptyCopy.held) {
      const sorted = [...byIndex.values()].sort((a, b) => a.checkpoint.index - b.checkpoint.index)
      const first = sorted[0]?.checkpoint
      const last = sorted[sorted.length - 1]?.checkpoint
      if (!first || !last) continue
      findings.push({
        chain_id: chainId,
        seq: first.seq,
        kind: 'checkpoint_copy_missing',
        detail: `${emptyCopy.empty.where} ${what}, but ${emptyCopy.full.where} holds checkpoints #${first.index}..#${last.index} (seq ${first.seq}..${last.seq}) of this chain`,
      })
    }
    return findings
  }
  let notYetMirrored = 0
  for (const [chainId, inTopic] of topic) {
    const inFile = file.get(chainId) ?? new Map<number, Claimed>()
    const fileMax = Math.max(0, ...inFile.keys())
    const ahead = [...inTopic.values()].filter((c) => c.valid && c.checkpoint.index > fileMax).sort((a, b) => a.checkpoint.index - b.checkpoint.index)
    if (ahead.length > 0) {
      const first = ahead[0]!.checkpoint
      const last = ahead[ahead.length - 1]!.checkpoint
      const range = first.index === last.index ? `#${first.index}` : `#${first.index}..#${last.index}`
      findings.push({
        chain_id: chainId,
        seq: first.seq,
        kind: 'checkpoint_log_rolled_back',
        detail: `${fileSource.missing ? `${fileSource.where} is gone` : `${fileSource.where} ends at checkpoint #${fileMax}`}, but ${topicSource.where} holds ${range} (seq ${first.seq}..${last.seq})`,
      })
    }
    for (const [index, t] of inTopic) {
      const f = inFile.get(index)
      if (f && f.valid && t.valid && f.checkpoint.sig !== t.checkpoint.sig) {
        findings.push({ chain_id: chainId, seq: f.checkpoint.seq, kind: 'checkpoint_conflict', detail: `checkpoint #${index} differs between ${fileSource.where} (seq ${f.checkpoint.seq}) and ${topicSource.where} (seq ${t.checkpoint.seq})` })
      }
    }
  }
  for (const [chainId, inFile] of file) {
    const topicMax = Math.max(0, ...(topic.get(chainId)?.keys() ?? []))
    notYetMirrored += [...inFile.keys()].filter((i) => i > topicMax).length
  }
  if (notYetMirrored > 0) warnings.push(`${notYetMirrored} checkpoints of ${fileSource.where} are not in ${topicSource.where} yet (the writer publishes them on its next round)`)
  return findings
}
