import type { Kafka } from 'kafkajs'
import { readCheckpointLog } from '../checkpoints/checkpoint-log.js'
import { readCheckpointTopic } from '../checkpoints/checkpoint-topic.js'
import { loadPublicKey } from '../checkpoints/keys.js'
import { analyseCheckpoints, type CheckpointSource } from './check-checkpoints.js'
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
  if (file?.missing) analysis.warnings.push(`the checkpoint log ${options.logPath} does not exist`)
  if (topic?.missing) analysis.warnings.push(`the checkpoint topic ${options.topic?.name} does not exist`)
  if (!file) analysis.warnings.push('the checkpoint log file was NOT read')
  if (!topic) analysis.warnings.push('the Kafka copy of the checkpoints was NOT read: a rolled-back checkpoint log would pass')
  return { analysis, sources: { file: options.logPath, topic: options.topic?.name ?? null, key_id: key.keyId } }
}
