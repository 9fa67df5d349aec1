import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kafka } from 'kafkajs'
import { afterAll } from 'vitest'
import { loadSigningKey, generateKeyFiles, type SigningKey } from '../../checkpoints/keys.js'
import { createCheckpointSigner, type CheckpointSigner } from '../../checkpoints/signer.js'
import { emptyChain, linkEntries, type ChainHead } from '../../consumers/chain.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import type { VerificationReport } from '../../integrity/report.js'
import { verifyStore } from '../../integrity/verify-store.js'
import type { VerifyOptions } from '../../integrity/verify.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from './events.js'
import { testKafka, testLogger } from './kafka.js'
import { openTestStore } from './store.js'
import { rowHashes } from './linked-rows.js'

/** One stored row as the test wrote it (what an attacker would start from). */
export interface WrittenRow {
  event: AccessEvent
  seq: number
  /** Hex of the row's hash. */
  hash: string
  offset: bigint
}

export interface SignedLog {
  store: Store
  kafka: Kafka
  key: SigningKey
  publicKeyPath: string
  logPath: string
  topic: string
  /** Rows per chain, in seq order. */
  rows: Map<string, WrittenRow[]>
  ingestedAt: number
  /** Verifies with the checkpoints from the file and the topic, like `readtrail verify`. */
  verify(mode: 'in-db' | 'independent', options?: Partial<VerifyOptions>): Promise<VerificationReport>
  /** The head a writer would continue from after `seq`. */
  headAt(chainId: string, seq: number): ChainHead
  /** Appends rows to a chain as a restarted writer would, signing a checkpoint every `every` rows. */
  append(chainId: string, count: number, every: number): Promise<void>
}

export interface SignedLogPlan {
  chains: string[]
  rowsPerChain: number
  /** A checkpoint is signed after every this many rows of a chain. */
  checkpointEvery: number
  /** Event overrides for row i (0-based) of a chain. */
  event?: (chainId: string, i: number) => Partial<AccessEvent>
  /** When rows were stored (microseconds); old enough that producer holes are out of the grace window by default. */
  ingestedAt?: number
}

/**
 * A log written the way the chain writer writes it, with checkpoints signed
 * by the real signer into a real file and a real Kafka topic: what the
 * red-team tests attack. Each chain is its own producer (producer_seq 1..n),
 * so removing a chain's newest rows leaves no producer hole elsewhere.
 */
export async function buildSignedLog(plan: SignedLogPlan): Promise<SignedLog> {
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-signed-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const keyPath = join(dir, 'keys', 'checkpoint.key')
  generateKeyFiles(keyPath)
  const key = loadSigningKey(keyPath)
  const store = await openTestStore()
  const kafka = testKafka()
  const topic = `rt-test-${randomUUID().slice(0, 8)}.checkpoints`
  const logPath = join(dir, 'checkpoints.jsonl')
  const ingestedAt = plan.ingestedAt ?? (Date.now() - 3_600_000) * 1000
  afterAll(async () => {
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [topic] }).catch(() => {})
    await admin.disconnect()
  })
  const rows = new Map<string, WrittenRow[]>()
  const producers = new Map(plan.chains.map((c) => [c, `app-${c}-${randomUUID().slice(0, 8)}`]))
  /** Writes rows the way the chain writer does and signs like `consume`, one signer run per call. */
  async function write(chainId: string, count: number, every: number): Promise<void> {
    const signer: CheckpointSigner = createCheckpointSigner({ database: store.database, key, logPath, kafka, topic, intervalMs: 3_600_000, logger: testLogger })
    await signer.start()
    const written = rows.get(chainId) ?? []
    rows.set(chainId, written)
    const last = written[written.length - 1]
    let head: ChainHead = last ? { chainId, seq: last.seq, hash: Buffer.from(last.hash, 'hex'), lastOffset: last.offset } : emptyChain(chainId)
    const base = written.length
    for (let start = 0; start < count; start += every) {
      const entries = Array.from({ length: Math.min(every, count - start) }, (_, k) => {
        const i = base + start + k
        const event = makeEvent({ producer_id: producers.get(chainId)!, producer_seq: i + 1, principal_id: `clerk-${i % 3}`, ...plan.event?.(chainId, i) })
        return { event, offset: BigInt(i), schemaVersion: 1 }
      })
      const linked = linkEntries(head, entries, ingestedAt)
      await store.insertRowBinary('access_log', linked.rows, linked.count)
      rowHashes(linked).forEach((hash, k) => {
        written.push({ event: entries[k]!.event, seq: head.seq + k + 1, hash: hash.toString('hex'), offset: entries[k]!.offset })
      })
      head = linked.head
      signer.noteHead(head)
      await signer.signNow()
    }
    await signer.stop()
  }
  for (const chainId of plan.chains) await write(chainId, plan.rowsPerChain, plan.checkpointEvery)
  const publicKeyPath = `${keyPath}.pub`
  return {
    store,
    kafka,
    key,
    publicKeyPath,
    logPath,
    topic,
    rows,
    ingestedAt,
    async verify(mode, options = {}) {
      const checkpoints = await loadCheckpoints({ database: store.database, publicKeyPath, logPath, topic: { kafka, name: topic } })
      return verifyStore(store, { mode, checkpoints, workers: 2, producerGraceMs: 60_000, ...options })
    },
    append: write,
    headAt(chainId, seq) {
      const row = rows.get(chainId)![seq - 1]!
      return { chainId, seq, hash: Buffer.from(row.hash, 'hex'), lastOffset: row.offset }
    },
  }
}

/**
 * Signs the newest row of every chain a store holds, as `readtrail consume`
 * would have at its last checkpoint, into a fresh file and topic, and returns
 * the checkpoints as verify reads them: for tests of stores written without a
 * writer, whose rows are otherwise unsigned (and so never verified).
 */
export async function signStoredHeads(store: Store): Promise<NonNullable<VerifyOptions['checkpoints']>> {
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-heads-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const keyPath = join(dir, 'keys', 'checkpoint.key')
  generateKeyFiles(keyPath)
  const kafka = testKafka()
  const topic = `rt-test-${randomUUID().slice(0, 8)}.checkpoints`
  afterAll(async () => {
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [topic] }).catch(() => {})
    await admin.disconnect()
  })
  const logPath = join(dir, 'checkpoints.jsonl')
  const signer = createCheckpointSigner({ database: store.database, key: loadSigningKey(keyPath), logPath, kafka, topic, intervalMs: 3_600_000, logger: testLogger })
  await signer.start()
  const heads = await store.queryRows<{ chain: string; s: string; h: string; o: string }>(
    `SELECT chain_id AS chain, toString(max(seq)) AS s, hex(argMax(hash, seq)) AS h, toString(argMax(kafka_offset, seq)) AS o FROM ${store.table('access_log')} GROUP BY chain_id`,
  )
  for (const head of heads) signer.noteHead({ chainId: head.chain, seq: Number(head.s), hash: Buffer.from(head.h, 'hex'), lastOffset: BigInt(head.o) })
  await signer.stop()
  return loadCheckpoints({ database: store.database, publicKeyPath: `${keyPath}.pub`, logPath, topic: { kafka, name: topic } })
}
