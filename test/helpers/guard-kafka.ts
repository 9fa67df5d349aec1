import type { KeyObject } from 'node:crypto'
import type { Kafka } from 'kafkajs'
import { readMessages, readWatermarks } from '../../common/kafka-read.js'
import type { AlertEvent } from '../../schemas/alert-event.js'
import { createBatchCodec } from '../../schemas/batch-codec.js'
import { verifyBatch } from '../../schemas/batch-signature.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { createAlertBatchCodec, sideTopic } from '../../schemas/side-batch.js'

/** Every message of a topic up to its current end, in partition and offset order. */
async function readAll(kafka: Kafka, topic: string): Promise<Buffer[]> {
  const marks = (await readWatermarks(kafka, topic, 30_000)) ?? []
  const out: { p: number; o: bigint; v: Buffer }[] = []
  await readMessages(kafka, topic, marks.map((m) => ({ partition: m.partition, from: m.low, to: m.high - 1n })), { timeoutMs: 60_000, maxMessages: 1_000_000 }, (partition, message) => {
    if (message.value) out.push({ p: partition, o: BigInt(message.offset), v: message.value })
  })
  return out.sort((a, b) => a.p - b.p || (a.o < b.o ? -1 : 1)).map((x) => x.v)
}

/** One access event read back from Kafka, as the producer sent it (snake_case, record ids as text). */
export interface SentEvent {
  read_id: string
  principal_id: string
  principal_type: string
  table_name: string
  db_name: string
  outcome: string
  record_ids: string[]
  row_count: number
  producer_seq: number
}

/**
 * The access events on `topic`, decoded with the access-batch codec; every
 * batch's signature is checked against `publicKey` (the test fails on a bad one).
 */
export async function readAccessEvents(kafka: Kafka, topic: string, publicKey: KeyObject): Promise<SentEvent[]> {
  const codec = createBatchCodec(loadSchemaRegistry(undefined, 'access-batch'))
  const events: SentEvent[] = []
  for (const message of await readAll(kafka, topic)) {
    if (!verifyBatch(topic, message, publicKey)) throw new Error(`an access batch on ${topic} does not verify under the producer's key`)
    for (const e of codec.decode(message).events) {
      const ev = e as Record<string, unknown>
      events.push({ ...(ev as unknown as SentEvent), row_count: Number(ev['row_count']), producer_seq: Number(ev['producer_seq']) })
    }
  }
  return events
}

/**
 * The alerts on `<topic>.alerts`, decoded with the alert-batch codec, each
 * batch's signature verified for that topic under `publicKey` and each event
 * validated with the AlertEvent schema; with the origin each batch claimed.
 */
export async function readAlerts(kafka: Kafka, topic: string, publicKey: KeyObject): Promise<(AlertEvent & { origin_service: string; origin_producer: string })[]> {
  const codec = createAlertBatchCodec()
  const alerts = sideTopic(topic, 'alert')
  const out: (AlertEvent & { origin_service: string; origin_producer: string })[] = []
  for (const message of await readAll(kafka, alerts)) {
    if (!codec.verify(alerts, message, publicKey)) throw new Error(`an alert batch on ${alerts} does not verify under the producer's key`)
    const { origin, events } = codec.decode(message)
    for (const e of events) out.push({ ...codec.schema.parse(e), origin_service: origin.service, origin_producer: origin.producerId })
  }
  return out
}
