import { writeFileSync } from 'node:fs'
import { Partitioners, type Kafka } from 'kafkajs'
import { formatCheckpointLine, isValidSignature, type SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { readCheckpointLog } from '../checkpoints/checkpoint-log.js'
import { ensureCheckpointTopic, publishCheckpoints, readCheckpointTopic } from '../checkpoints/checkpoint-topic.js'
import type { LoadedPublicKey } from '../checkpoints/keys.js'
import type { Logger } from '../common/logger.js'
import { analyseCheckpoints } from './check-checkpoints.js'
import { RepairError } from './repair-errors.js'
import type { RepairItem } from './repair-report.js'
import { isPseudoChain, type VerifyState } from './verify-state.js'

export interface RepublishOptions {
  kafka: Kafka
  /** The checkpoint topic. */
  topic: string
  /** The checkpoint file: the copy republished. */
  logPath: string
  database: string
  key: LoadedPublicKey
  /** The signed verify state (null: none recorded yet; the caller says so). */
  verifyState: VerifyState | null
  dryRun: boolean
  logger: Logger
  /** Give up waiting for the broker to delete or create the topic after this long. @default 30000 */
  timeoutMs?: number
}

/** Newest checkpoint per chain (by index). */
function newestByChain(cps: readonly SignedCheckpoint[]): Map<string, SignedCheckpoint> {
  const newest = new Map<string, SignedCheckpoint>()
  for (const cp of cps) if ((newest.get(cp.chain_id)?.index ?? 0) < cp.index) newest.set(cp.chain_id, cp)
  return newest
}

/**
 * Accepts a lost Kafka copy of the checkpoints (CHECKPOINT_COPY_LOST) by
 * refilling the topic from the file, only after proving the file is one to
 * trust: every line a checkpoint the key signed, every chain of them whole,
 * and no chain behind the highest checkpoint the signed verify state (or
 * what is left of the topic) ever saw — a file behind those is the rolled
 * back history CHECKPOINT_COPY_LOST exists to stop. A trimmed topic cannot
 * be refilled in place: what is left of it is saved beside the file as
 * evidence, then it is deleted and created again.
 */
export async function republishCheckpoints(o: RepublishOptions): Promise<RepairItem[]> {
  const file = await readCheckpointLog(o.logPath)
  const entries = file.entries.map((e) => e.checkpoint)
  const invalid = [
    ...file.unreadable.map((u) => `line ${u.line}: ${u.problem}`),
    ...file.entries.filter((e) => e.checkpoint.key_id !== o.key.keyId || !isValidSignature(e.checkpoint, o.key.publicKey)).map((e) => `line ${e.line}: not signed by the checkpoint key`),
    ...analyseCheckpoints({ file: { kind: 'file', where: o.logPath, missing: file.missing, entries: file.entries.map((e) => ({ at: `line ${e.line}`, checkpoint: e.checkpoint })), unreadable: [] }, topic: null }, o.key, o.database)
      .findings.map((f) => `${f.chain_id} seq ${f.seq}: ${f.kind}: ${f.detail}`),
  ]
  if (invalid.length > 0) {
    throw new RepairError('REPAIR_CHECKPOINT_LOG_INVALID', `the checkpoint file ${o.logPath} cannot be republished: ${invalid.slice(0, 5).join('; ')}${invalid.length > 5 ? ` (and ${invalid.length - 5} more)` : ''}`, {
      details: { path: o.logPath, problems: invalid.slice(0, 50) },
    })
  }
  const ours = entries.filter((cp) => cp.database === o.database)
  const fileNewest = newestByChain(ours)
  const topic = await readCheckpointTopic(o.kafka, o.topic)
  const topicOurs = topic.entries.map((e) => e.checkpoint).filter((cp) => cp.database === o.database && cp.key_id === o.key.keyId && isValidSignature(cp, o.key.publicKey))
  const behind: string[] = []
  for (const [chainId, state] of Object.entries(o.verifyState?.chains ?? {})) {
    const high = state.checkpoint_high
    if (isPseudoChain(chainId) || !high || high.index === 0) continue
    const have = fileNewest.get(chainId)
    if (!have || have.index < high.index || have.seq < high.seq) {
      behind.push(`${chainId}: the file's newest is #${have?.index ?? 0} at seq ${have?.seq ?? 0}, the signed verify state saw #${high.index} at seq ${high.seq}`)
    }
  }
  for (const [chainId, cp] of newestByChain(topicOurs)) {
    const have = fileNewest.get(chainId)
    if (!have || have.index < cp.index) behind.push(`${chainId}: the file's newest is #${have?.index ?? 0}, the Kafka copy still holds #${cp.index}`)
  }
  if (behind.length > 0) {
    throw new RepairError('REPAIR_CHECKPOINTS_ROLLED_BACK', `the checkpoint file ${o.logPath} is behind what was seen before (rolled back?); not republishing it: ${behind.slice(0, 5).join('; ')}`, {
      details: { path: o.logPath, behind: behind.slice(0, 50) },
    })
  }
  const trimmed = BigInt(topic.logStart) > 0n
  const published = new Set(trimmed ? [] : topic.entries.map((e) => `${e.checkpoint.chain_id}\u0000${e.checkpoint.index}\u0000${e.checkpoint.sig}`))
  const missing = entries.filter((cp) => !published.has(`${cp.chain_id}\u0000${cp.index}\u0000${cp.sig}`))
  if (missing.length === 0 && !topic.missing && !trimmed) return []
  const state = topic.missing ? 'does not exist' : trimmed ? `lost its first ${topic.logStart} records` : `lacks ${missing.length} of the file's checkpoints`
  const item: RepairItem = {
    action: 'republish',
    chain_id: `(checkpoint topic ${o.topic})`,
    from_seq: 0,
    to_seq: 0,
    outcome: 'would_republish',
    code: null,
    detail: `the topic ${state}: ${missing.length} checkpoint(s) from ${o.logPath} to publish${trimmed ? ' after saving what is left of the topic and creating it again' : ''}`,
  }
  if (o.dryRun) return [item]
  const timeoutMs = o.timeoutMs ?? 30_000
  if (trimmed) {
    const evidence = `${o.logPath}.topic-before-repair-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`
    writeFileSync(evidence, topic.entries.map((e) => `${formatCheckpointLine(e.checkpoint)}\n`).join(''), { flag: 'wx', mode: 0o644 })
    item.detail += `; what was left of the topic is saved in ${evidence}`
    await recreateTopic(o.kafka, o.topic, timeoutMs)
  } else if (topic.missing) {
    await ensureCheckpointTopic(o.kafka, o.topic)
  }
  const producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    await publishCheckpoints(producer, o.topic, missing)
  } finally {
    await producer.disconnect().catch(() => {})
  }
  o.logger.error({ topic: o.topic, path: o.logPath, checkpoints: missing.length, trimmed, alert: 'READTRAIL_INTEGRITY_ALERT' }, 'checkpoint topic refilled from the checkpoint file (readtrail repair --republish-checkpoints)')
  return [{ ...item, outcome: 'republished' }]
}

/** Deletes the topic, waits until the broker forgot it, and creates it again as the signer does (kept forever). */
async function recreateTopic(kafka: Kafka, topic: string, timeoutMs: number): Promise<void> {
  const admin = kafka.admin()
  const deadline = Date.now() + timeoutMs
  await admin.connect()
  try {
    await admin.deleteTopics({ topics: [topic] })
    while ((await admin.listTopics()).includes(topic)) {
      if (Date.now() > deadline) throw new RepairError('KAFKA_UNAVAILABLE', `the broker did not delete ${topic} within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    await admin.disconnect().catch(() => {})
  }
  // A topic just deleted may still be "marked for deletion" for a moment.
  for (;;) {
    try {
      await ensureCheckpointTopic(kafka, topic)
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 500))
    }
  }
}
