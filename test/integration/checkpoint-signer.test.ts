import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Partitioners } from 'kafkajs'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { checkpointDigest, formatCheckpointLine, GENESIS_CHECKPOINT, isValidSignature, signCheckpoint, type SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { openCheckpointLog, readCheckpointLog } from '../../checkpoints/checkpoint-log.js'
import type * as CheckpointLogModule from '../../checkpoints/checkpoint-log.js'
import { checkpointTopicOf, ensureCheckpointTopic, readCheckpointTopic } from '../../checkpoints/checkpoint-topic.js'
import { CheckpointError } from '../../checkpoints/errors.js'
import { generateKeyFiles, loadPublicKey, loadSigningKey } from '../../checkpoints/keys.js'
import { createCheckpointSigner, type ChainHeadNote, type CheckpointSigner, type CheckpointSignerOptions } from '../../checkpoints/signer.js'
import { createLogger } from '../../common/logger.js'
import { freshTopic, testKafka, testLogger } from '../helpers/kafka.js'

// Paths whose checkpoint log fails every append as a full disk would: the
// only way to make a real file fail on demand without root-only mounts.
const failing = vi.hoisted(() => new Set<string>())
vi.mock('../../checkpoints/checkpoint-log.js', async (importOriginal) => {
  const actual = await importOriginal<typeof CheckpointLogModule>()
  return {
    ...actual,
    openCheckpointLog: async (...args: Parameters<typeof actual.openCheckpointLog>) => {
      const log = await actual.openCheckpointLog(...args)
      const path = args[0]
      return {
        append: (cps: readonly SignedCheckpoint[]) =>
          failing.has(path)
            ? Promise.reject(new CheckpointError('CHECKPOINT_LOG_UNAVAILABLE', `checkpoint log ${path}: ENOSPC: no space left on device`, { details: { path } }))
            : log.append(cps),
        close: () => log.close(),
      }
    },
  }
})

const DATABASE = 'readtrail_cp_test'

describe('checkpoint signer (real Kafka)', () => {
  const kafka = testKafka()
  const dir = mkdtempSync(join(tmpdir(), 'rt-signer-'))
  const keyPath = join(dir, 'keys', 'checkpoint.key')
  generateKeyFiles(keyPath)
  const key = loadSigningKey(keyPath)
  const { publicKey } = loadPublicKey(`${keyPath}.pub`)
  const cleanups: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })

  /** A fresh, created checkpoint topic deleted when the file's tests end. */
  async function freshCheckpointTopic(): Promise<string> {
    const topic = checkpointTopicOf(await freshTopic(kafka, 1))
    await ensureCheckpointTopic(kafka, topic)
    cleanups.push(async () => {
      const admin = kafka.admin()
      await admin.connect()
      await admin.deleteTopics({ topics: [topic] }).catch(() => {})
      await admin.disconnect()
    })
    return topic
  }

  function signer(topic: string, logPath: string, extra: Partial<CheckpointSignerOptions> = {}): CheckpointSigner {
    const s = createCheckpointSigner({ database: DATABASE, key, logPath, kafka, topic, intervalMs: 200, logger: testLogger, ...extra })
    cleanups.push(() => s.stop())
    return s
  }

  function head(chainId: string, seq: number): ChainHeadNote {
    return { chainId, seq, hash: randomBytes(32), lastOffset: BigInt(seq - 1) }
  }

  async function fileCheckpoints(path: string): Promise<SignedCheckpoint[]> {
    const read = await readCheckpointLog(path)
    expect(read.unreadable).toEqual([])
    return read.entries.map((e) => e.checkpoint)
  }

  async function topicCheckpoints(topic: string): Promise<SignedCheckpoint[]> {
    const read = await readCheckpointTopic(kafka, topic)
    expect(read.missing).toBe(false)
    expect(read.unreadable).toEqual([])
    return read.entries.map((e) => e.checkpoint)
  }

  /** Every chain's checkpoints run 1, 2, 3… each naming the digest of the one before, signed by our key. */
  function expectLinked(cps: readonly SignedCheckpoint[]): void {
    const byChain = new Map<string, SignedCheckpoint[]>()
    for (const cp of cps) byChain.set(cp.chain_id, [...(byChain.get(cp.chain_id) ?? []), cp])
    for (const chain of byChain.values()) {
      chain.forEach((cp, i) => {
        expect(cp.index).toBe(i + 1)
        expect(cp.prev).toBe(i === 0 ? GENESIS_CHECKPOINT : checkpointDigest(chain[i - 1]!))
        if (i > 0) expect(cp.seq).toBeGreaterThan(chain[i - 1]!.seq)
        expect(isValidSignature(cp, publicKey)).toBe(true)
        expect(cp).toMatchObject({ database: DATABASE, key_id: key.keyId })
      })
    }
  }

  it('reports a missing topic as missing and reads an empty one quickly', async () => {
    expect(await readCheckpointTopic(kafka, `rt-test-absent-${Date.now()}.checkpoints`)).toEqual({ missing: true, entries: [], unreadable: [], logStart: '0' })
    const topic = await freshCheckpointTopic()
    const started = Date.now()
    expect(await readCheckpointTopic(kafka, topic)).toEqual({ missing: false, entries: [], unreadable: [], logStart: '0' })
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it('accepts its own topic again, and refuses an existing topic that would let checkpoints expire', async () => {
    const topic = await freshCheckpointTopic()
    await expect(ensureCheckpointTopic(kafka, topic)).resolves.toEqual({ created: false })
    const expiring = `rt-test-expiring-${randomBytes(4).toString('hex')}.checkpoints`
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: expiring, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '86400000' }] }] })
      const err = await ensureCheckpointTopic(kafka, expiring).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(CheckpointError)
      expect(err).toMatchObject({ code: 'CHECKPOINT_TOPIC_INVALID', retriable: false })
      expect((err as Error).message).toContain('retention.ms=86400000')
    } finally {
      await admin.deleteTopics({ topics: [expiring] }).catch(() => {})
      await admin.disconnect()
    }
  })

  it('reports messages that are not checkpoints as unreadable, by offset, next to the ones that are', async () => {
    const topic = await freshCheckpointTopic()
    expect(topic).toMatch(/^rt-test-[0-9a-f]{8}\.checkpoints$/)
    const good = signCheckpoint(
      { v: 1, database: DATABASE, chain_id: 'access/0', index: 1, seq: 1, hash: '00'.repeat(32), kafka_offset: '0', signed_at: new Date().toISOString(), prev: GENESIS_CHECKPOINT, key_id: key.keyId },
      key.privateKey,
    )
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    cleanups.push(() => producer.disconnect())
    await producer.send({
      topic,
      messages: [{ value: 'not json' }, { value: null }, { value: JSON.stringify({ ...good, index: 0 }) }, { value: formatCheckpointLine(good) }],
    })
    const read = await readCheckpointTopic(kafka, topic)
    expect(read.entries).toEqual([{ offset: '3', checkpoint: good }])
    expect(read.unreadable).toEqual([
      { offset: '0', problem: expect.stringContaining('not JSON') },
      { offset: '1', problem: 'message has no value' },
      { offset: '2', problem: expect.stringContaining('index') },
    ])
  })

  it('signs on the interval only while heads move, stop() signs the final head, and the file and the topic agree', async () => {
    const topic = await freshCheckpointTopic()
    const logPath = join(dir, 'interval', 'checkpoints.jsonl')
    const s = signer(topic, logPath)
    await s.start()

    const a1 = head('access/0', 1)
    s.noteHead(a1)
    await vi.waitFor(() => expect(s.stats().signed).toBe(1), { timeout: 20_000, interval: 50 })
    // Five intervals with no new head: nothing more is signed.
    await new Promise((r) => setTimeout(r, 1_000))
    expect(s.stats()).toEqual({ signed: 1, published: 1, pendingPublish: 0 })

    s.noteHead(head('access/0', 2))
    const a3 = head('access/0', 3)
    s.noteHead(a3)
    s.noteHead(head('access/0', 2)) // late and lower: ignored
    s.noteHead(head('access/1', 1))
    await vi.waitFor(() => expect(s.stats().signed).toBe(3), { timeout: 20_000, interval: 50 })

    s.noteHead(head('access/0', 3)) // not above the checkpointed seq
    const a4 = head('access/0', 4)
    s.noteHead(a4)
    await s.stop()
    expect(s.stats()).toEqual({ signed: 4, published: 4, pendingPublish: 0 })

    const inFile = await fileCheckpoints(logPath)
    expect(inFile.map((cp) => [cp.chain_id, cp.index, cp.seq])).toEqual([
      ['access/0', 1, 1],
      ['access/0', 2, 3],
      ['access/1', 1, 1],
      ['access/0', 3, 4],
    ])
    expect(inFile[0]).toMatchObject({ hash: a1.hash.toString('hex'), kafka_offset: '0' })
    expect(inFile[1]).toMatchObject({ hash: a3.hash.toString('hex'), kafka_offset: '2' })
    expect(inFile[3]).toMatchObject({ hash: a4.hash.toString('hex'), kafka_offset: '3' })
    expectLinked(inFile)
    expect((await topicCheckpoints(topic)).map(formatCheckpointLine)).toEqual(inFile.map(formatCheckpointLine))
  })

  it('a restarted signer continues the indexes and republishes checkpoints only the file holds', async () => {
    const topic = await freshCheckpointTopic()
    const logPath = join(dir, 'restart', 'checkpoints.jsonl')
    const first = signer(topic, logPath)
    await first.start()
    first.noteHead(head('access/0', 5))
    expect((await first.signNow()).map((cp) => cp.index)).toEqual([1])
    await first.stop()

    // A crash between fsync and publish: the file holds index 2, the topic does not.
    const [published] = await fileCheckpoints(logPath)
    const fileOnly = signCheckpoint(
      { ...published!, index: 2, seq: 7, hash: randomBytes(32).toString('hex'), kafka_offset: '6', signed_at: new Date().toISOString(), prev: checkpointDigest(published!) },
      key.privateKey,
    )
    const otherDatabase = signCheckpoint({ ...fileOnly, database: 'someone_else', index: 9 }, key.privateKey)
    const log = await openCheckpointLog(logPath)
    await log.append([fileOnly, otherDatabase])
    await log.close()
    expect(await topicCheckpoints(topic)).toEqual([published])

    const second = signer(topic, logPath)
    await second.start()
    expect(second.stats()).toEqual({ signed: 0, published: 1, pendingPublish: 0 })
    expect(await topicCheckpoints(topic)).toEqual([published, fileOnly])

    second.noteHead(head('access/0', 7)) // already checkpointed as index 2
    expect(await second.signNow()).toEqual([])
    second.noteHead(head('access/0', 9))
    const [next] = await second.signNow()
    expect(next).toMatchObject({ index: 3, seq: 9, prev: checkpointDigest(fileOnly) })
    await second.stop()

    const ours = (await fileCheckpoints(logPath)).filter((cp) => cp.database === DATABASE)
    expectLinked(ours)
    expect((await topicCheckpoints(topic)).map(formatCheckpointLine)).toEqual(ours.map(formatCheckpointLine))
  })

  it('refuses (CHECKPOINT_COPY_LOST) a topic lagging the file by more than one crash, or missing a chain the file holds, and leaves a missing topic missing', async () => {
    const topic = await freshCheckpointTopic()
    const logPath = join(dir, 'lagging', 'checkpoints.jsonl')
    const first = signer(topic, logPath, { intervalMs: 3_600_000 })
    await first.start()
    first.noteHead(head('access/0', 5))
    const [published] = await first.signNow()
    await first.stop()

    // Two checkpoints the topic never saw: more than one crash between fsync and publish leaves.
    const second = signCheckpoint({ ...published!, index: 2, seq: 7, prev: checkpointDigest(published!) }, key.privateKey)
    const third = signCheckpoint({ ...second, index: 3, seq: 9, prev: checkpointDigest(second) }, key.privateKey)
    const log = await openCheckpointLog(logPath)
    await log.append([second, third])
    await log.close()
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      await expect(signer(topic, logPath).start(), `start #${attempt}`).rejects.toMatchObject({ code: 'CHECKPOINT_COPY_LOST', details: { reason: 'behind', chains: ['access/0: file #3, topic #1'] } })
    }
    expect(await topicCheckpoints(topic)).toEqual([published])

    // A chain whose every checkpoint the topic lacks: nothing in the topic proves the file's history.
    const otherPath = join(dir, 'lagging', 'other.jsonl')
    const other = await openCheckpointLog(otherPath)
    await other.append([signCheckpoint({ ...published!, chain_id: 'access/9' }, key.privateKey)])
    await other.close()
    await expect(signer(topic, otherPath).start()).rejects.toMatchObject({ code: 'CHECKPOINT_COPY_LOST', details: { chains: ['access/9: file #1, topic #0'] } })

    // A deleted topic: refused starts do not make it again.
    const gone = checkpointTopicOf(await freshTopic(kafka, 1))
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      await expect(signer(gone, otherPath).start(), `start #${attempt}`).rejects.toMatchObject({ code: 'CHECKPOINT_COPY_LOST', details: { reason: 'missing' } })
    }
    expect(await readCheckpointTopic(kafka, gone)).toMatchObject({ missing: true })
  })

  it('follows the topic when it holds another checkpoint with the index of the file\'s newest (a crash before publishing while another writer took the chain)', async () => {
    const topic = await freshCheckpointTopic()
    const quiet = { intervalMs: 3_600_000 }
    const y = signer(topic, join(dir, 'tie', 'y.jsonl'), quiet)
    await y.start()
    y.noteHead(head('access/3', 10))
    const [one] = await y.signNow()
    y.noteHead(head('access/3', 20))
    const [theirs] = await y.signNow()
    await y.stop()
    // X signed #2 over the same #1 but crashed before publishing it.
    const xPath = join(dir, 'tie', 'x.jsonl')
    const ours = signCheckpoint({ ...theirs!, seq: 19, hash: randomBytes(32).toString('hex'), kafka_offset: '18' }, key.privateKey)
    const log = await openCheckpointLog(xPath)
    await log.append([one!, ours])
    await log.close()
    const x = signer(topic, xPath, quiet)
    await x.start()
    x.noteHead(head('access/3', 30))
    const [next] = await x.signNow()
    expect(next).toMatchObject({ index: 3, prev: checkpointDigest(theirs!) })
    await x.stop()
    expectLinked(await topicCheckpoints(topic))
  })

  it('continues from the topic when the file is behind it, and picks up a chain another writer checkpointed', async () => {
    const topic = await freshCheckpointTopic()
    const records: { level: number; msg: string }[] = []
    const logger = createLogger({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line) as { level: number; msg: string }) })

    // Writer X starts first, before any checkpoint of access/2 exists.
    // No timer rounds (interval of an hour): a timer round racing signNow()
    // could sign a head first and leave signNow() nothing to sign.
    const quiet = { intervalMs: 3_600_000 }
    const x = signer(topic, join(dir, 'moved', 'x.jsonl'), quiet)
    await x.start()
    // Writer Y owns access/2 for a while and checkpoints it twice.
    const y = signer(topic, join(dir, 'moved', 'y.jsonl'), quiet)
    await y.start()
    y.noteHead(head('access/2', 10))
    await y.signNow()
    y.noteHead(head('access/2', 20))
    await y.signNow()
    await y.stop()

    // The partition moves to X: a head at or below Y's newest is not signed again; a newer one continues Y's indexes.
    x.noteHead(head('access/2', 15))
    expect(await x.signNow()).toEqual([])
    x.noteHead(head('access/2', 25))
    expect((await x.signNow()).map((cp) => [cp.index, cp.seq])).toEqual([[3, 25]])
    await x.stop()

    // A signer whose file lost everything (restored from an old backup) continues from Kafka and says so.
    const z = signer(topic, join(dir, 'moved', 'z.jsonl'), { ...quiet, logger })
    await z.start()
    expect(records.some((r) => r.level === 50 && r.msg.includes('checkpoint file is behind its Kafka copy'))).toBe(true)
    z.noteHead(head('access/2', 30))
    expect((await z.signNow()).map((cp) => cp.index)).toEqual([4])
    await z.stop()

    expectLinked(await topicCheckpoints(topic))
    expect((await topicCheckpoints(topic)).map((cp) => cp.seq)).toEqual([10, 20, 25, 30])
  })

  it('calls onFatal and stops signing when the checkpoint file cannot be appended to', async () => {
    const topic = await freshCheckpointTopic()
    const logPath = join(dir, 'fatal', 'checkpoints.jsonl')
    failing.add(logPath)
    const onFatal = vi.fn()
    const s = signer(topic, logPath, { onFatal })
    await s.start()
    s.noteHead(head('access/0', 1))
    await vi.waitFor(() => expect(onFatal).toHaveBeenCalledTimes(1), { timeout: 20_000, interval: 50 })
    expect(onFatal.mock.calls[0]![0]).toMatchObject({ code: 'CHECKPOINT_LOG_UNAVAILABLE' })
    await expect(s.signNow()).rejects.toMatchObject({ code: 'CHECKPOINT_LOG_UNAVAILABLE' })
    await s.stop()
    expect(onFatal).toHaveBeenCalledTimes(1)
    expect(s.stats()).toEqual({ signed: 0, published: 0, pendingPublish: 0 })
    // Nothing reached Kafka that the file does not hold.
    expect(await topicCheckpoints(topic)).toEqual([])
  })
})
