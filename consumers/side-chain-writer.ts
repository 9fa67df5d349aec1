import { hash } from 'node:crypto'
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs'
import { ReadtrailError } from '../common/errors.js'
import { componentLogger, type Logger } from '../common/logger.js'
import { nowMicros } from '../common/time.js'
import { isReadtrailError } from '../common/errors.js'
import type { SideBatchCodec } from '../schemas/side-batch.js'
import { RowBinaryWriter } from '../store/row-binary.js'
import { sideTableDdl, type SideTable } from '../store/side-tables.js'
import type { Store } from '../store/store.js'
import type { ChainCheckpoint, ChainTrust } from './chain-resume.js'
import { GENESIS_HASH } from './chain.js'
import type { TrustedProducers } from './trusted-producers.js'

export interface SideChainWriterOptions<E> {
  kafka: Kafka
  store: Store
  logger: Logger
  /** The side topic: `<topic>.db-audit` or `<topic>.alerts`. */
  topic: string
  groupId: string
  codec: SideBatchCodec<E>
  table: SideTable<E>
  /** Keys a side batch must be signed with, each for the service it names. */
  trustedProducers: TrustedProducers
  /** Where each chain resumes: its newest signed checkpoint (outside ClickHouse). */
  trust: ChainTrust
  /** Every head stored, for the checkpoint signer. */
  onChainHead: (head: { chainId: string; seq: number; hash: Buffer; lastOffset: bigint }) => void
  /** Stored rows the Kafka log does not vouch for: the writer stops. */
  onFatal: (err: unknown) => void
}

export interface SideChainWriterStats {
  messages: number
  rows: number
  /** Messages refused (unsigned, unknown key, bad signature, malformed, invalid event), by code. */
  refused: Record<string, number>
  /** Rows re-derived from Kafka that were already stored, byte for byte (after a restart). */
  confirmed: number
}

export interface SideChainWriter {
  start(): Promise<void>
  stop(): Promise<void>
  stats(): SideChainWriterStats
}

interface Head {
  chainId: string
  seq: number
  hash: Buffer
  /** Offset of the last message linked; -1n before the first. */
  lastOffset: bigint
  /** Highest seq stored when the chain was taken up: rows up to it are compared, not inserted. */
  storedMax: number
}

/**
 * Writes one side stream (database-audit entries or alerts) into its own hash
 * chain, one chain per partition, as the chain writer does for reads but
 * simpler: a side batch is small and rare, so each message is linked,
 * checked and stored on its own.
 *
 * Trust: a chain is taken up from its newest signed checkpoint, never from
 * ClickHouse. The consumer seeks to the message after it and re-derives
 * every row from Kafka; a row already stored at that seq must be byte for
 * byte the one derived (CHAIN_UNTRUSTED otherwise: the writer stops), and a
 * missing one is stored. So a crash between insert and commit, a
 * redelivery, or rows deleted after the checkpoint never fork, skip or
 * duplicate the chain.
 *
 * A message is stored only if a trusted key signed it for the service it
 * names, and every event in it is valid; otherwise it is refused whole,
 * logged and counted by code (the chain does not hold it; verify lists the
 * offsets the chain skipped).
 */
export function createSideChainWriter<E>(options: SideChainWriterOptions<E>): SideChainWriter {
  const { kafka, store, topic, codec, table, trustedProducers, trust } = options
  const log = componentLogger(options.logger, `${table.kind}-writer`)
  const stats: SideChainWriterStats = { messages: 0, rows: 0, refused: {}, confirmed: 0 }
  const heads = new Map<number, Head>()
  const writer = new RowBinaryWriter()
  const qualified = store.table(table.table)
  let consumer: Consumer | undefined
  let stopped = false

  function refuse(offset: string, partition: number, code: string, why: string): undefined {
    stats.refused[code] = (stats.refused[code] ?? 0) + 1
    log.error({ topic, partition, offset, code, refused: stats.refused[code] }, `${table.kind} message refused: ${why}`)
    return undefined
  }

  /** The message's events if a trusted key signed it for its service and every event is valid. */
  function trusted(message: Buffer, partition: number, offset: string): { events: E[]; keyId: string; producerId: string; service: string; version: number } | undefined {
    let decoded
    try {
      decoded = codec.decode(message)
    } catch (err) {
      refuse(offset, partition, isReadtrailError(err) ? err.code : 'MESSAGE_MALFORMED', (err as Error).message)
      return undefined
    }
    const { origin } = decoded
    const producer = trustedProducers.byKeyId(origin.keyId)
    if (!producer) return refuse(offset, partition, 'PRODUCER_KEY_UNKNOWN', `key ${JSON.stringify(origin.keyId.slice(0, 80))} is not in ${trustedProducers.path}`)
    if (!codec.verify(topic, message, producer.publicKey)) return refuse(offset, partition, 'SIGNATURE_INVALID', `the signature does not verify under key ${producer.keyId}`)
    if (producer.service !== origin.service) {
      return refuse(offset, partition, 'PRODUCER_NOT_AUTHORIZED', `key ${producer.keyId} is trusted for ${JSON.stringify(producer.service)}, not ${JSON.stringify(origin.service.slice(0, 80))}`)
    }
    const events: E[] = []
    for (const [i, raw] of decoded.events.entries()) {
      const parsed = codec.schema.safeParse(raw)
      if (!parsed.success) return refuse(offset, partition, 'EVENT_INVALID', `event ${i}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ').slice(0, 500)}`)
      events.push(parsed.data)
    }
    if (events.length === 0) return refuse(offset, partition, 'EVENT_INVALID', 'a batch with no events')
    return { events, keyId: origin.keyId, producerId: origin.producerId, service: origin.service, version: decoded.writer.version }
  }

  async function takeUp(partition: number): Promise<{ head: Head; start: bigint }> {
    const chainId = `${topic}/${partition}`
    const cp: ChainCheckpoint | null = await trust.checkpointOf(chainId)
    const rows = await store.queryRows<{ n: string }>(`SELECT toString(max(seq)) AS n FROM ${qualified} WHERE chain_id = {chain:String}`, { chain: chainId })
    const storedMax = Number(rows[0]?.n ?? 0)
    const head: Head = cp
      ? { chainId, seq: cp.seq, hash: cp.hash, lastOffset: cp.lastOffset ?? -1n, storedMax }
      : { chainId, seq: 0, hash: GENESIS_HASH, lastOffset: -1n, storedMax }
    log.info({ chain_id: chainId, checkpoint_seq: cp?.seq ?? 0, stored_max: storedMax }, 'side chain taken up from its signed checkpoint')
    return { head, start: head.lastOffset + 1n }
  }

  /** Links one message's events after `head`, stored at `ingestedAt`. */
  function link(head: Head, offset: bigint, msg: NonNullable<ReturnType<typeof trusted>>, ingestedAt: number): { rows: Buffer; hashes: string[]; seq: number; hash: Buffer } {
    writer.reset()
    let seq = head.seq
    let prev = head.hash
    const hashes: string[] = []
    for (const [index, event] of msg.events.entries()) {
      seq += 1
      const start = writer.length
      const row = {
        chain_id: head.chainId, seq, prev_hash: prev, kafka_offset: offset, message_index: index, message_events: msg.events.length,
        ingested_at: ingestedAt, schema_version: msg.version, key_id: msg.keyId, producer_id: msg.producerId, service: msg.service, event,
      }
      for (const column of table.columns) column.write(writer, row)
      const rowHash = hash('sha256', writer.view(start), 'buffer')
      writer.bytes(rowHash)
      hashes.push(rowHash.toString('hex'))
      prev = rowHash
    }
    return { rows: writer.slice(0), hashes, seq, hash: prev }
  }

  /**
   * A message whose rows were stored before this take-up: re-derived from
   * Kafka with the ingested_at they were stored at, every row must hash to
   * what is stored. Anything else (a row edited, deleted, inserted) is
   * CHAIN_UNTRUSTED: the writer signs nothing over it and stops.
   */
  async function confirmStored(head: Head, offset: bigint, msg: NonNullable<ReturnType<typeof trusted>>): Promise<Buffer> {
    const first = head.seq + 1
    const last = head.seq + msg.events.length
    // Aliases unlike the columns: ClickHouse would read an alias `seq` in the WHERE and ORDER BY.
    const stored = await store.queryRows<{ s: string; at: string; h: string }>(
      `SELECT toString(seq) AS s, toString(toUnixTimestamp64Micro(ingested_at)) AS at, lower(hex(hash)) AS h FROM ${qualified}
       WHERE chain_id = {chain:String} AND seq BETWEEN {first:UInt64} AND {last:UInt64} ORDER BY seq`,
      { chain: head.chainId, first, last },
    )
    const linked = stored.length > 0 ? link(head, offset, msg, Number(stored[0]!.at)) : undefined
    const same = linked !== undefined && stored.length === linked.hashes.length && stored.every((r, i) => Number(r.s) === first + i && r.h === linked.hashes[i])
    if (!same) {
      throw new ReadtrailError('CHAIN_UNTRUSTED', `${table.table} rows of ${head.chainId} at seq ${first}..${last} are not the ones the Kafka message at offset ${offset} derives: stopped`, {
        details: { chain_id: head.chainId, first_seq: first, last_seq: last, kafka_offset: offset.toString() },
      })
    }
    stats.confirmed += stored.length
    return linked.hash
  }

  async function handleBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload, owner: Consumer): Promise<void> {
    const partition = batch.partition
    let head = heads.get(partition)
    if (!head) {
      const taken = await takeUp(partition)
      head = taken.head
      heads.set(partition, head)
      if (batch.messages.length > 0 && BigInt(batch.messages[0]!.offset) !== taken.start) {
        // Re-derive from the message after the checkpoint: what came before is vouched for by its signature.
        owner.seek({ topic, partition, offset: taken.start.toString() })
        return
      }
    }
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || stopped) return
      const offset = BigInt(message.offset)
      if (offset <= head.lastOffset) continue
      stats.messages += 1
      const msg = message.value ? trusted(message.value, partition, message.offset) : (refuse(message.offset, partition, 'MESSAGE_MALFORMED', 'an empty message'), undefined)
      if (msg) {
        const last = head.seq + msg.events.length
        if (last <= head.storedMax) {
          // Stored before this take-up: compare, never insert twice.
          head.hash = await confirmStored(head, offset, msg)
        } else if (head.seq < head.storedMax) {
          throw new ReadtrailError('CHAIN_UNTRUSTED', `${table.table} of ${head.chainId} holds rows up to seq ${head.storedMax}, inside the message at offset ${offset}: stopped`)
        } else {
          const linked = link(head, offset, msg, nowMicros())
          await store.insertRowBinary(table.table, linked.rows, msg.events.length, table.storedColumnNames)
          stats.rows += msg.events.length
          head.hash = linked.hash
        }
        head.seq = last
        options.onChainHead({ chainId: head.chainId, seq: head.seq, hash: head.hash, lastOffset: offset })
      }
      head.lastOffset = offset
      resolveOffset(message.offset)
      await owner.commitOffsets([{ topic, partition, offset: (offset + 1n).toString() }])
      await heartbeat()
    }
  }

  return {
    async start() {
      await store.client.command({ query: sideTableDdl(qualified, table) })
      const c = kafka.consumer({ groupId: options.groupId, allowAutoTopicCreation: false })
      consumer = c
      c.on(c.events.REBALANCING, () => heads.clear())
      await c.connect()
      await c.subscribe({ topics: [topic], fromBeginning: true })
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async (payload) => {
          try {
            await handleBatch(payload, c)
          } catch (err) {
            if (isReadtrailError(err) && err.code === 'CHAIN_UNTRUSTED') {
              stopped = true
              log.error({ err }, `${table.kind} chain not vouched for by Kafka: writer stopped`)
              options.onFatal(err)
              return
            }
            // Store or broker trouble: forget the head, kafkajs retries the batch from the last commit.
            heads.delete(payload.batch.partition)
            throw err
          }
        },
      })
      log.info({ topic, group: options.groupId, table: table.table }, 'side chain writer started')
    },
    async stop() {
      stopped = true
      await consumer?.disconnect()
      consumer = undefined
    },
    stats: () => ({ ...stats, refused: { ...stats.refused } }),
  }
}
