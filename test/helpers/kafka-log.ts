import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Partitioners, type IHeaders, type Kafka } from 'kafkajs'
import { afterAll } from 'vitest'
import { checkpointTopicOf } from '../../checkpoints/checkpoint-topic.js'
import { generateKeyFiles, loadSigningKey, type SigningKey } from '../../checkpoints/keys.js'
import { createCheckpointSigner } from '../../checkpoints/signer.js'
import { chainIdOf, emptyChain, linkEntries, type ChainHead } from '../../consumers/chain.js'
import { deadLetterClaimOf, deadLetterSource, signDeadLetter } from '../../consumers/dead-letter-signature.js'
import { deadLetterTopicOf } from '../../consumers/topics.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import type { VerificationReport } from '../../integrity/report.js'
import { collectInDb } from '../../integrity/collect-in-db.js'
import { collectIndependent } from '../../integrity/collect-independent.js'
import { verifyLog, type VerifyOptions } from '../../integrity/verify.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec } from '../../schemas/codec.js'
import { REPLAY_HEADER } from '../../schemas/message-headers.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from './events.js'
import { freshTopic, testKafka, testLogger } from './kafka.js'
import { openTestStore } from './store.js'
import { rowHashes } from './linked-rows.js'

/** One stored row: its event came from the message at `offset` of the chain's partition. */
export interface KafkaRow {
  event: AccessEvent
  seq: number
  hash: string
  offset: bigint
}

export interface KafkaSignedLog {
  store: Store
  kafka: Kafka
  /** The access topic: chain `<topic>/<p>` is partition p. */
  topic: string
  groupId: string
  checkpointTopic: string
  logPath: string
  publicKeyPath: string
  rows: Map<string, KafkaRow[]>
  ingestedAt: number
  chainOf(partition: number): string
  /**
   * Produces `count` real access events to the partition, stores them as the
   * chain writer does (linked to the head, with their real offsets), signs a
   * checkpoint after every `every` rows (never with `every` 0) and commits
   * the group past them, as the writer commits after its insert.
   */
  ingest(partition: number, count: number, every: number): Promise<KafkaRow[]>
  /** Produces messages the writer would not store (returns their offsets); commits the group past them. */
  produceSkipped(partition: number, messages: { value: Buffer; headers?: IHeaders }[]): Promise<bigint[]>
  /**
   * The dead letter the writer sends for the message at `offset` (consumers/chain-writer.ts
   * sendDeadLetters), signed with the checkpoint key unless `signed` is false.
   */
  deadLetter(partition: number, offset: bigint, options?: { signed?: boolean }): Promise<void>
  /** The checkpoint key (what the writer signs dead letters with). */
  key: SigningKey
  /** Sets the group's committed offset of a partition (the writer must not be running). */
  commitAt(partition: number, offset: bigint): Promise<void>
  /** Verifies like `readtrail verify` with the Kafka log checked. */
  verify(mode: 'in-db' | 'independent', options?: Partial<VerifyOptions>): Promise<VerificationReport>
}

/**
 * A log built from a real topic on the test broker: events produced as the
 * SDK produces them (Avro single-object encoding), rows stored as the chain
 * writer stores them with the offsets the broker gave, checkpoints signed by
 * the real signer into a real file and the real `<topic>.checkpoints`, and
 * the writer's group committed. What red-team-kafka.test.ts attacks.
 */
export async function buildKafkaLog(plan: { partitions: number }): Promise<KafkaSignedLog> {
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-kafka-log-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const keyPath = join(dir, 'keys', 'checkpoint.key')
  generateKeyFiles(keyPath)
  const key: SigningKey = loadSigningKey(keyPath)
  const store = await openTestStore()
  const kafka = testKafka()
  const topic = await freshTopic(kafka, plan.partitions)
  const checkpointTopic = checkpointTopicOf(topic)
  const groupId = `${topic}-writer`
  const logPath = join(dir, 'checkpoints.jsonl')
  const ingestedAt = (Date.now() - 3_600_000) * 1000
  const codec = createCodec(loadSchemaRegistry())
  afterAll(async () => {
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [checkpointTopic] }).catch(() => {})
    await admin.deleteGroups([groupId]).catch(() => {})
    await admin.disconnect()
  })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
  await producer.connect()
  afterAll(() => producer.disconnect())
  const rows = new Map<string, KafkaRow[]>()
  /** Every message produced here, for the dead letters that copy them. */
  const produced = new Map<string, { key: Buffer | null; value: Buffer }>()
  const heads = new Map<string, ChainHead>()
  const chainOf = (partition: number) => chainIdOf(topic, partition)

  async function produce(partition: number, messages: { value: Buffer; key?: string; headers?: IHeaders }[]): Promise<bigint[]> {
    const [meta] = await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m, partition })) })
    const base = BigInt(meta!.baseOffset!)
    messages.forEach((m, i) => produced.set(`${partition}@${base + BigInt(i)}`, { key: m.key === undefined ? null : Buffer.from(m.key), value: m.value }))
    return messages.map((_, i) => base + BigInt(i))
  }

  async function commitAt(partition: number, offset: bigint): Promise<void> {
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.setOffsets({ groupId, topic, partitions: [{ partition, offset: offset.toString() }] })
    } finally {
      await admin.disconnect()
    }
  }

  return {
    store,
    kafka,
    topic,
    groupId,
    checkpointTopic,
    logPath,
    publicKeyPath: `${keyPath}.pub`,
    rows,
    ingestedAt,
    chainOf,
    async ingest(partition, count, every) {
      const chainId = chainOf(partition)
      const written = rows.get(chainId) ?? []
      rows.set(chainId, written)
      // Each chain is its own producer numbered 1, 2, 3…: removing a row leaves a hole in it only.
      const events = Array.from({ length: count }, (_, k) => makeEvent({ producer_id: `app-${chainId}`, producer_seq: written.length + k + 1, principal_id: `clerk-${k % 3}` }))
      const offsets = await produce(
        partition,
        events.map((e) => ({ key: e.read_id, value: codec.encode(e) })),
      )
      const signer = createCheckpointSigner({ database: store.database, key, logPath, kafka, topic: checkpointTopic, intervalMs: 3_600_000, logger: testLogger })
      await signer.start()
      let head = heads.get(chainId) ?? emptyChain(chainId)
      const step = every > 0 ? every : count
      for (let start = 0; start < count; start += step) {
        const entries = events.slice(start, start + step).map((event, k) => ({ event, offset: offsets[start + k]!, schemaVersion: 1 }))
        const linked = linkEntries(head, entries, ingestedAt)
        await store.insertRowBinary('access_log', linked.rows, linked.count)
        rowHashes(linked).forEach((hash, k) => {
          written.push({ event: entries[k]!.event, seq: head.seq + k + 1, hash: hash.toString('hex'), offset: entries[k]!.offset })
        })
        head = linked.head
        if (every > 0) {
          signer.noteHead(head)
          await signer.signNow()
        }
      }
      await signer.stop()
      heads.set(chainId, head)
      await commitAt(partition, offsets[offsets.length - 1]! + 1n)
      return written.slice(-count)
    },
    async produceSkipped(partition, messages) {
      const offsets = await produce(partition, messages)
      await commitAt(partition, offsets[offsets.length - 1]! + 1n)
      return offsets
    },
    async deadLetter(partition, offset, options = {}) {
      const source = deadLetterSource(topic, partition, offset)
      const message = produced.get(`${partition}@${offset}`) ?? { key: null, value: Buffer.from('not avro') }
      const code = 'MESSAGE_MALFORMED'
      const signature = options.signed === false ? {} : signDeadLetter(deadLetterClaimOf(store.database, source, message, code), key)
      await producer.send({
        topic: deadLetterTopicOf({ topic }),
        acks: -1,
        messages: [{ key: message.key, value: message.value, headers: { 'readtrail-error-code': code, 'readtrail-error': 'test', 'readtrail-source': source, ...signature } }],
      })
    },
    key,
    commitAt,
    async verify(mode, options = {}) {
      const checkpoints = await loadCheckpoints({ database: store.database, publicKeyPath: `${keyPath}.pub`, logPath, topic: { kafka, name: checkpointTopic } })
      // The two collectors directly, not verifyStore: these tests are about the chain, the Kafka log and the checkpoints.
      const collect = (request: Parameters<typeof collectInDb>[1]) => (request.mode === 'independent' ? collectIndependent(store, request) : collectInDb(store, request))
      const outcome = await verifyLog(collect, store.database, { mode, checkpoints, workers: 2, producerGraceMs: 60_000, kafkaLog: { kafka, topic, groupId }, ...options })
      return outcome.report
    },
  }
}

/** A replayed copy of a stored event, as an outbox replay sends it. */
export function replayedMessage(event: AccessEvent): { value: Buffer; headers: IHeaders } {
  return { value: createCodec(loadSchemaRegistry()).encode(event), headers: { [REPLAY_HEADER]: '1' } }
}
