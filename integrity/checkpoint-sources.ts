import type { Kafka } from 'kafkajs'
import { readCheckpointLog } from '../checkpoints/checkpoint-log.js'
import { readCheckpointTopic } from '../checkpoints/checkpoint-topic.js'
import { loadPublicKey } from '../checkpoints/keys.js'
import { analyseCheckpoints, type CheckpointSource } from './check-checkpoints.js'
import { readTopicConfig, readWatermarks } from './kafka-log-facts.js'
import type { Finding } from './report.js'
import type { VerifyOptions } from './verify.js'

export interface CheckpointSourceOptions {
  database: string
  publicKeyPath: string
  /** The append-only checkpoint log; null: not read (the report says so). */
  logPath: string | null
  /** The Kafka copy; null: not read (the report says so). */
  topic: { kafka: Kafka; name: string } | null
}

/**
 * Reads both copies of the checkpoints and checks them with the public key.
 * A missing key is an error, not a silent unsigned verification.
 */
export async function loadCheckpoints(options: CheckpointSourceOptions): Promise<NonNullable<VerifyOptions['checkpoints']>> {
  const key = loadPublicKey(options.publicKeyPath)
  let file: CheckpointSource | null = null
  if (options.logPath) {
    const read = await readCheckpointLog(options.logPath)
    file = {
      kind: 'file',
      where: options.logPath,
      missing: read.missing,
      entries: read.entries.map((e) => ({ at: `line ${e.line}`, checkpoint: e.checkpoint })),
      unreadable: read.unreadable.map((u) => ({ at: `line ${u.line}`, problem: u.problem })),
    }
  }
  let topic: CheckpointSource | null = null
  if (options.topic) {
    const read = await readCheckpointTopic(options.topic.kafka, options.topic.name)
    topic = {
      kind: 'topic',
      where: `topic ${options.topic.name}`,
      missing: read.missing,
      entries: read.entries.map((e) => ({ at: `offset ${e.offset}`, checkpoint: e.checkpoint })),
      unreadable: read.unreadable.map((u) => ({ at: `offset ${u.offset}`, problem: u.problem })),
    }
  }
  const analysis = analyseCheckpoints({ file, topic }, key, options.database)
  if (options.topic && topic && !topic.missing) analysis.findings.push(...(await checkTopicKeptForever(options.topic.kafka, options.topic.name)))
  if (file?.missing) analysis.warnings.push(`the checkpoint log ${options.logPath} does not exist`)
  if (topic?.missing) analysis.warnings.push(`the checkpoint topic ${options.topic?.name} does not exist`)
  if (!file) analysis.warnings.push('the checkpoint log file was NOT read')
  if (!topic) analysis.warnings.push('the Kafka copy of the checkpoints was NOT read: a rolled-back checkpoint log would pass')
  return { analysis, sources: { file: options.logPath, topic: options.topic?.name ?? null, key_id: key.keyId } }
}

const KEPT_FOREVER = Object.freeze({ 'retention.ms': '-1', 'retention.bytes': '-1', 'cleanup.policy': 'delete' })

/**
 * The Kafka copy exposes a rolled-back file only while it keeps every
 * checkpoint: a topic whose retention or cleanup policy lets the broker drop
 * them, or whose log-start offset moved (delete-records), is a finding
 * whether or not the checkpoints it lost are noticed otherwise.
 */
async function checkTopicKeptForever(kafka: Kafka, topic: string): Promise<Finding[]> {
  const findings: Finding[] = []
  const at = { chain_id: '(checkpoint topic)', seq: 0, kind: 'checkpoint_topic_weakened' as const }
  const config = await readTopicConfig(kafka, topic, Object.keys(KEPT_FOREVER), 30_000)
  const wrong = Object.entries(KEPT_FOREVER)
    .filter(([name, value]) => config.get(name) !== value)
    .map(([name, value]) => `${name}=${config.get(name) ?? '(unset)'} (must be ${value})`)
  if (wrong.length > 0) findings.push({ ...at, detail: `topic ${topic} would not keep checkpoints forever: ${wrong.join(', ')}` })
  for (const m of (await readWatermarks(kafka, topic, 30_000)) ?? []) {
    if (m.low > 0n) findings.push({ ...at, detail: `topic ${topic} partition ${m.partition} starts at offset ${m.low}: checkpoints before it were deleted from Kafka` })
  }
  return findings
}
