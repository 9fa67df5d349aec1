import { createHash, type KeyObject } from 'node:crypto'
import type { Kafka } from 'kafkajs'
import { readMessages, readWatermarks } from '../../common/kafka-read.js'
import type { DbAuditEvent } from '../../schemas/db-audit-event.js'
import type { SideBatchCodec } from '../../schemas/side-batch.js'

/** This reader's own batches found in Kafka after its position's offset: what was acked but not yet committed to the position file. */
export interface PublishedTail {
  firstSeq: number
  lastSeq: number
  /** Offset after the last of them. */
  nextOffset: bigint
  /** The event with lastSeq, to check the log still reads the same. */
  last: Pick<DbAuditEvent, 'reader_seq' | 'log_offset' | 'object_name' | 'statement_digest'>
  /** Messages naming this reader whose signature did not verify under its key (ignored: forged or damaged). */
  forged: number
}

/** The partition all of a reader's batches go to: its order in one partition is the order of reader_seq. */
export function partitionOf(source: string, partitions: number): number {
  return createHash('sha256').update(source).digest().readUInt32BE(0) % partitions
}

/**
 * Reads `partition` from `from` to its end and returns what this reader
 * (producer_id = source, signed by its own key) published there. Another
 * producer's messages, and messages that claim this reader but were not
 * signed by its key, are passed over: only the key's own batches move the
 * reader's resume point, so a forged batch cannot make it skip entries.
 */
export async function findPublishedTail(
  kafka: Kafka,
  topic: string,
  partition: number,
  from: bigint,
  who: { source: string; publicKey: KeyObject; codec: SideBatchCodec<DbAuditEvent> },
  timeoutMs: number,
): Promise<PublishedTail | undefined> {
  const marks = await readWatermarks(kafka, topic, timeoutMs)
  const mark = marks?.find((m) => m.partition === partition)
  if (!mark) return undefined
  const start = from > mark.low ? from : mark.low
  if (start >= mark.high) return undefined
  let tail: PublishedTail | undefined
  let forged = 0
  await readMessages(kafka, topic, [{ partition, from: start, to: mark.high - 1n }], { timeoutMs, maxMessages: Number.MAX_SAFE_INTEGER }, (_p, message) => {
    if (!message.value) return
    let decoded: ReturnType<SideBatchCodec<DbAuditEvent>['decode']>
    try {
      decoded = who.codec.decode(message.value)
    } catch {
      return
    }
    if (decoded.origin.producerId !== who.source) return
    if (!who.codec.verify(topic, message.value, who.publicKey)) {
      forged++
      return
    }
    const events = decoded.events.map((e) => who.codec.schema.safeParse(e)).flatMap((r) => (r.success ? [r.data] : []))
    if (events.length === 0) return
    const last = events[events.length - 1]!
    tail = {
      firstSeq: tail?.firstSeq ?? events[0]!.reader_seq,
      lastSeq: last.reader_seq,
      nextOffset: BigInt(message.offset) + 1n,
      last: { reader_seq: last.reader_seq, log_offset: last.log_offset, object_name: last.object_name, statement_digest: last.statement_digest },
      forged,
    }
  })
  if (tail) tail.forged = forged
  return tail
}
