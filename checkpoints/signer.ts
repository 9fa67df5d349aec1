import { Partitioners, type Kafka, type Producer } from 'kafkajs'
import { describeError } from '../common/errors.js'
import { componentLogger, type Logger } from '../common/logger.js'
import { checkpointDigest, GENESIS_CHECKPOINT, isValidSignature, signCheckpoint, type CheckpointBody, type SignedCheckpoint } from './checkpoint.js'
import { openCheckpointLog, readCheckpointLog, type CheckpointLog } from './checkpoint-log.js'
import { ensureCheckpointTopic, publishCheckpoints, readCheckpointTopic } from './checkpoint-topic.js'
import { CheckpointError } from './errors.js'
import type { SigningKey } from './keys.js'

/** A chain head ClickHouse acknowledged, as the chain writer holds it. */
export interface ChainHeadNote {
  chainId: string
  seq: number
  /** SHA-256 of the row at `seq` (32 bytes). */
  hash: Buffer
  /** Kafka offset of the row at `seq`. */
  lastOffset: bigint | null
}

export interface CheckpointSignerOptions {
  /** ClickHouse database of the log; only its checkpoints are continued. */
  database: string
  key: SigningKey
  /** The append-only checkpoint file (primary copy). */
  logPath: string
  kafka: Kafka
  /** The checkpoint topic (second copy). */
  topic: string
  /** How often heads that moved are signed. @default 10000 */
  intervalMs?: number
  logger: Logger
  /** Called once when the checkpoint file cannot be written; the caller stops ingesting. */
  onFatal?: (err: unknown) => void
  /** Clock for signed_at. @default () => new Date() */
  now?: () => Date
}

export interface CheckpointSignerStats {
  /** Checkpoints signed and fsync'd to the file by this signer. */
  signed: number
  /** Checkpoints published to the topic (including republished ones). */
  published: number
  /** Checkpoints in the file but not yet acknowledged by the topic. */
  pendingPublish: number
}

export interface CheckpointSigner {
  /**
   * Opens the file, checks the topic still holds what the file holds
   * (CHECKPOINT_COPY_LOST otherwise), creates the topic only for a file with
   * no checkpoints, resumes every chain's checkpoint sequence, starts the timer.
   */
  start(): Promise<void>
  /** Called by the chain writer after every insert ClickHouse acknowledged. */
  noteHead(head: ChainHeadNote): void
  /**
   * Tells the signer another writer may have checkpointed the chain since it
   * last did (its partition was revoked): its next head re-reads the topic
   * before signing, so indexes never repeat.
   */
  forgetChain(chainId: string): void
  /**
   * The newest valid checkpoint of a chain, the higher of the file's and the
   * topic's (the topic is re-read for a chain first seen or forgotten since):
   * where the chain writer resumes. null when the chain was never signed.
   * Only checkpoints whose signature verifies under this signer's key count;
   * both copies are outside ClickHouse but either may have been edited.
   */
  trustedCheckpoint(chainId: string): Promise<SignedCheckpoint | null>
  /** Signs each chain whose noted head moved since its last checkpoint; returns the new checkpoints. */
  signNow(): Promise<SignedCheckpoint[]>
  /** Stops the timer, signs a final time, closes the file and the producer. */
  stop(): Promise<void>
  stats(): CheckpointSignerStats
}

/** What the checkpoint topic held when read, this key's checkpoints only. */
interface TopicCopy {
  missing: boolean
  /** Newest checkpoint per chain. */
  newest: Map<string, SignedCheckpoint>
  logStart: bigint
}

/** Why the topic cannot vouch for the checkpoint file. */
interface LostCopy {
  reason: 'missing' | 'trimmed' | 'behind'
  /** Completes "checkpoint topic <name> …". */
  what: string
  /** Per chain the topic lags: `<chain>: file #i, topic #j`. */
  chains: string[]
}

/**
 * Whether the topic lost checkpoints the file holds. The topic is append-only
 * and kept forever, and a checkpoint reaches it only after the file holds it,
 * so once the topic was read it can lag the file only by what a crash between
 * fsync and publish left: per chain at most the one checkpoint that directly
 * follows (by its signed `prev`) the topic's newest. Any other lag means the
 * topic was deleted or trimmed; republishing the file then would let a file
 * wound back alongside it become the only history, so the file's content is
 * judged here, never whether this start happened to create the topic (a
 * refused start would otherwise leave an empty topic the next start accepts).
 */
function findLostCopy(fileNewest: ReadonlyMap<string, SignedCheckpoint>, topic: TopicCopy): LostCopy | null {
  // Trimmed records are gone whatever the file holds: even a signer with an empty file must not start over on what is left.
  if (topic.logStart > 0n) return { reason: 'trimmed', what: `lost its first ${topic.logStart} records (delete-records, or retention changed)`, chains: [] }
  if (fileNewest.size === 0) return null
  if (topic.missing) return { reason: 'missing', what: 'does not exist (deleted?) although the checkpoint log holds checkpoints', chains: [] }
  const chains: string[] = []
  for (const [chainId, inFile] of fileNewest) {
    const inTopic = topic.newest.get(chainId)
    const topicIndex = inTopic?.index ?? 0
    if (topicIndex >= inFile.index) continue
    const crashTail = inTopic !== undefined && inFile.index === topicIndex + 1 && inFile.prev === checkpointDigest(inTopic)
    if (!crashTail) chains.push(`${chainId}: file #${inFile.index}, topic #${topicIndex}`)
  }
  if (chains.length === 0) return null
  return { reason: 'behind', what: `lacks checkpoints the checkpoint log holds (deleted and recreated, or emptied?): ${chains.slice(0, 5).join('; ')}${chains.length > 5 ? ` (and ${chains.length - 5} more)` : ''}`, chains }
}

interface NotedHead {
  seq: number
  hash: Buffer
  lastOffset: bigint
}

/**
 * Signs each chain's head with Ed25519 every `intervalMs` and keeps the
 * checkpoints outside ClickHouse. Invariants:
 * - only heads the chain writer noted are signed, never heads read back from
 *   ClickHouse, which an attacker may control;
 * - a checkpoint is fsync'd to the file before it is published, so the topic
 *   never holds one the file lacks (the file is the primary copy);
 * - per chain, index rises by one and `prev` digests the previous
 *   checkpoint, continuing from the newest the file or the topic holds.
 */
export function createCheckpointSigner(options: CheckpointSignerOptions): CheckpointSigner {
  const { database, key, logPath, kafka, topic } = options
  const intervalMs = options.intervalMs ?? 10_000
  const now = options.now ?? (() => new Date())
  const log = componentLogger(options.logger, 'checkpoint-signer')
  /** Newest checkpoint known per chain (ours, the file's or the topic's). */
  const latest = new Map<string, SignedCheckpoint>()
  /** Newest head noted per chain, signed on the next round if above `latest`. */
  const noted = new Map<string, NotedHead>()
  /** Chains whose newest checkpoint was looked up in the topic since they were first noted here (or last forgotten). */
  const resolved = new Set<string>()
  let pending: SignedCheckpoint[] = []
  let signed = 0
  let published = 0
  let file: CheckpointLog | undefined
  let producer: Producer | undefined
  let timer: NodeJS.Timeout | undefined
  let round: Promise<unknown> = Promise.resolve()
  let fatal: unknown
  let state: 'new' | 'running' | 'stopped' = 'new'

  /** A checkpoint read back from the file or the topic counts only when this key signed it. */
  function isOurs(cp: SignedCheckpoint): boolean {
    return cp.database === database && cp.key_id === key.keyId && isValidSignature(cp, key.publicKey)
  }

  /** Keeps the higher-index checkpoint of a chain; returns whether `cp` was it. */
  function remember(cp: SignedCheckpoint): boolean {
    const known = latest.get(cp.chain_id)
    if (known && known.index >= cp.index) return false
    latest.set(cp.chain_id, cp)
    return true
  }

  async function readTopicNewest(): Promise<Map<string, SignedCheckpoint>> {
    return (await readTopic()).newest
  }

  async function readTopic(): Promise<TopicCopy> {
    const contents = await readCheckpointTopic(kafka, topic)
    if (contents.unreadable.length > 0) log.error({ topic, unreadable: contents.unreadable.slice(0, 10), count: contents.unreadable.length }, 'checkpoint topic holds messages that are not checkpoints')
    const newest = new Map<string, SignedCheckpoint>()
    let forged = 0
    for (const { checkpoint: cp } of contents.entries) {
      if (cp.database !== database) continue
      if (!isOurs(cp)) {
        forged += 1
        continue
      }
      const known = newest.get(cp.chain_id)
      if (!known || cp.index > known.index) newest.set(cp.chain_id, cp)
    }
    if (forged > 0) log.error({ topic, count: forged, alert: 'READTRAIL_INTEGRITY_ALERT' }, 'checkpoint topic holds checkpoints this key did not sign: ignored')
    return { missing: contents.missing, newest, logStart: BigInt(contents.logStart) }
  }

  /** Stops the start: the topic cannot vouch that the file was not wound back. */
  function refuseLostCopy(lost: LostCopy | null): void {
    if (!lost) return
    log.error({ topic, path: logPath, reason: lost.reason, chains: lost.chains.slice(0, 10), alert: 'READTRAIL_INTEGRITY_ALERT' }, `checkpoint topic ${lost.what}`)
    throw new CheckpointError(
      'CHECKPOINT_COPY_LOST',
      `checkpoint topic ${topic} ${lost.what}; refusing to sign until an operator has investigated and run readtrail repair --republish-checkpoints (docs/errors.md)`,
      { details: { topic, path: logPath, reason: lost.reason, chains: lost.chains.slice(0, 50) } },
    )
  }

  async function flushPending(): Promise<void> {
    if (pending.length === 0 || !producer) return
    const batch = pending
    try {
      await publishCheckpoints(producer, topic, batch)
      pending = pending.slice(batch.length)
      published += batch.length
    } catch (err) {
      // The file already holds them durably; the next round publishes them (the next start only one per chain).
      log.warn({ err, topic, pending: pending.length }, 'could not publish checkpoints to Kafka; will retry')
    }
  }

  /** Before signing a chain this signer never saw (or lost), take its newest checkpoint from the topic. */
  async function resolveChains(chainIds: string[]): Promise<string[]> {
    const unknown = chainIds.filter((id) => !resolved.has(id))
    if (unknown.length === 0) return chainIds
    let newest: Map<string, SignedCheckpoint>
    try {
      newest = await readTopicNewest()
    } catch (err) {
      // Signing without knowing the newest index could repeat one; these chains wait for the next round.
      log.warn({ err, chains: unknown }, 'could not read the checkpoint topic for chains new to this signer; not signing them this round')
      return chainIds.filter((id) => resolved.has(id))
    }
    for (const id of unknown) {
      const cp = newest.get(id)
      if (cp && remember(cp)) log.info({ chain_id: id, index: cp.index, seq: cp.seq }, 'continuing a chain another writer checkpointed')
      resolved.add(id)
    }
    return chainIds
  }

  async function signRound(): Promise<SignedCheckpoint[]> {
    if (fatal !== undefined) throw fatal
    if (!file) throw new CheckpointError('CHECKPOINT_LOG_UNAVAILABLE', 'checkpoint signer is not running', { details: { path: logPath } })
    const moved = [...noted].filter(([id, head]) => head.seq > (latest.get(id)?.seq ?? 0)).map(([id]) => id)
    const chains = moved.length === 0 ? [] : await resolveChains(moved)
    const cps: SignedCheckpoint[] = []
    for (const chainId of chains) {
      const head = noted.get(chainId)
      const previous = latest.get(chainId)
      // forgetChain() may have run while the topic was read, and the topic may just have shown a newer checkpoint than this head.
      if (!head || head.seq <= (previous?.seq ?? 0)) continue
      const body: CheckpointBody = {
        v: 1,
        database,
        chain_id: chainId,
        index: (previous?.index ?? 0) + 1,
        seq: head.seq,
        hash: head.hash.toString('hex'),
        kafka_offset: head.lastOffset.toString(),
        signed_at: now().toISOString(),
        prev: previous ? checkpointDigest(previous) : GENESIS_CHECKPOINT,
        key_id: key.keyId,
      }
      cps.push(signCheckpoint(body, key.privateKey))
    }
    if (cps.length > 0) {
      try {
        await file.append(cps)
      } catch (err) {
        fatal = err
        if (timer) clearInterval(timer)
        timer = undefined
        log.error({ err, path: logPath }, 'cannot append to the checkpoint log; stopping rather than ingest without durable checkpoints')
        options.onFatal?.(err)
        throw err
      }
      for (const cp of cps) latest.set(cp.chain_id, cp)
      signed += cps.length
      pending.push(...cps)
    }
    await flushPending()
    log.debug({ signed: cps.length, chains: cps.map((cp) => ({ chain_id: cp.chain_id, index: cp.index, seq: cp.seq })), pending_publish: pending.length }, 'checkpoint signing round')
    return cps
  }

  /** Rounds run one after another: two at once could give two checkpoints the same index. */
  function signNow(): Promise<SignedCheckpoint[]> {
    const next = round.then(signRound)
    round = next.catch(() => {})
    return next
  }

  return {
    async start() {
      if (state !== 'new') throw new CheckpointError('CHECKPOINT_LOG_UNAVAILABLE', 'checkpoint signer already started', { details: { path: logPath } })
      state = 'running'
      try {
        // The log binds its own component on the caller's logger (on `log`, the line would carry `component` twice).
        file = await openCheckpointLog(logPath, options.logger)
        const contents = await readCheckpointLog(logPath)
        if (contents.unreadable.length > 0) log.error({ path: logPath, unreadable: contents.unreadable.slice(0, 10), count: contents.unreadable.length }, 'checkpoint log holds lines that are not checkpoints')
        const ofDatabase = contents.entries.map((e) => e.checkpoint).filter((cp) => cp.database === database)
        const fromFile = ofDatabase.filter(isOurs)
        if (fromFile.length < ofDatabase.length) {
          log.error({ path: logPath, count: ofDatabase.length - fromFile.length, alert: 'READTRAIL_INTEGRITY_ALERT' }, 'checkpoint log holds checkpoints this key did not sign: ignored')
        }
        for (const cp of fromFile) remember(cp)
        const fileNewest = new Map(latest)
        // Decided on what the topic holds before anything here touches it: a
        // start that created the topic (or published to it) and then refused
        // would leave a state the next start could not tell from a healthy one.
        const fromTopic = await readTopic()
        refuseLostCopy(findLostCopy(fileNewest, fromTopic))
        // A topic deleted between the read and here comes back empty: the
        // decision above was made on a copy that no longer exists.
        const { created } = await ensureCheckpointTopic(kafka, topic)
        if (created && fileNewest.size > 0) refuseLostCopy({ reason: 'missing', what: 'was deleted while the signer started', chains: [] })
        for (const [chainId, cp] of fromTopic.newest) {
          const inFile = latest.get(chainId)
          if (!inFile || cp.index > inFile.index) {
            // A file rolled back (restored from backup, edited) loses checkpoints Kafka kept; repeating their indexes would fork the checkpoint chain.
            log.error({ path: logPath, topic, chain_id: chainId, file_index: inFile?.index ?? 0, topic_index: cp.index }, 'checkpoint file is behind its Kafka copy; continuing from the Kafka copy')
            latest.set(chainId, cp)
          } else if (cp.index === inFile.index && cp.sig !== inFile.sig) {
            // Two signers gave the chain the same index (this one crashed before publishing while another took the chain over): the next checkpoint follows the copy every writer reads.
            log.error({ path: logPath, topic, chain_id: chainId, index: cp.index, alert: 'READTRAIL_INTEGRITY_ALERT' }, 'checkpoint file and its Kafka copy hold different checkpoints with the same index; continuing from the Kafka copy')
            latest.set(chainId, cp)
          }
        }
        const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
        producer = p
        try {
          await p.connect()
        } catch (cause) {
          throw new CheckpointError('CHECKPOINT_TOPIC_UNAVAILABLE', `checkpoint topic ${topic}: cannot connect a producer: ${describeError(cause)}`, { cause, details: { topic } })
        }
        // `resolved` stays empty on purpose: a chain's partition may belong to
        // another writer now and come here later, so each chain's first head
        // re-reads the topic rather than trust what was read here.
        // Fsync'd but never published: a crash came between the two (at most
        // one checkpoint per chain, each following the topic's newest, or
        // findLostCopy() would have refused).
        pending = fromFile.filter((cp) => cp.index > (fromTopic.newest.get(cp.chain_id)?.index ?? 0))
        if (pending.length > 0) {
          log.warn({ count: pending.length }, 'republishing checkpoints the file holds but the topic lacks')
          await flushPending()
        }
      } catch (err) {
        await file?.close().catch(() => {})
        await producer?.disconnect().catch(() => {})
        file = undefined
        producer = undefined
        latest.clear()
        pending = []
        state = 'new'
        throw err
      }
      timer = setInterval(() => {
        signNow().catch((err: unknown) => log.error({ err }, 'checkpoint signing round failed'))
      }, intervalMs)
      // The timer must not keep a process alive whose work is done; stop() signs the final heads.
      timer.unref()
      log.info({ path: logPath, topic, key_id: key.keyId, chains: latest.size, interval_ms: intervalMs }, 'checkpoint signer started')
    },

    noteHead(head) {
      if (!Number.isSafeInteger(head.seq) || head.seq < 1 || head.hash.length !== 32 || head.lastOffset === null || head.lastOffset < 0n) {
        log.error({ chain_id: head.chainId, seq: head.seq, hash_bytes: head.hash.length }, 'ignoring a chain head that cannot be checkpointed')
        return
      }
      const known = noted.get(head.chainId)
      if (known && known.seq >= head.seq) return
      // Copied: the caller's buffer is not ours to keep.
      noted.set(head.chainId, { seq: head.seq, hash: Buffer.from(head.hash), lastOffset: head.lastOffset })
    },

    forgetChain(chainId) {
      resolved.delete(chainId)
      noted.delete(chainId)
    },

    async trustedCheckpoint(chainId) {
      if (state !== 'running') throw new CheckpointError('CHECKPOINT_LOG_UNAVAILABLE', 'checkpoint signer is not running', { details: { path: logPath } })
      // Queued behind signing rounds: a round in flight may be about to raise the chain's newest checkpoint.
      const next = round.then(async () => {
        if (!resolved.has(chainId)) {
          // One read of the topic resolves every chain it names, so taking up
          // several partitions after a join reads it once, not once per chain.
          const newest = await readTopicNewest()
          for (const [id, cp] of newest) {
            if (resolved.has(id)) continue
            if (remember(cp)) log.info({ chain_id: id, index: cp.index, seq: cp.seq }, 'continuing a chain another writer checkpointed')
            resolved.add(id)
          }
          resolved.add(chainId)
        }
        return latest.get(chainId) ?? null
      })
      round = next.catch(() => {})
      return next
    },

    signNow,

    async stop() {
      if (state !== 'running') return
      state = 'stopped'
      if (timer) clearInterval(timer)
      timer = undefined
      let failure: unknown
      try {
        if (fatal === undefined && file) await signNow()
      } catch (err) {
        failure = err
      }
      await round
      await file?.close().catch((err: unknown) => log.warn({ err }, 'could not close the checkpoint log'))
      file = undefined
      await producer?.disconnect().catch(() => {})
      producer = undefined
      if (pending.length > 0) {
        log.warn({ pending: pending.length }, 'checkpoints not yet on Kafka; the next start republishes one per chain that follows the topic\'s newest, and refuses more (CHECKPOINT_COPY_LOST) until readtrail repair --republish-checkpoints')
      }
      log.info({ signed, published, pending_publish: pending.length }, 'checkpoint signer stopped')
      if (failure !== undefined) throw failure
    },

    stats: () => ({ signed, published, pendingPublish: pending.length }),
  }
}
