import type { Kafka } from 'kafkajs'
import { createChainWriter, type ChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createAuditProducer, type AuditProducer } from '../../producers/audit-producer.js'
import type { AuditProducerConfigInput } from '../../producers/config.js'
import { createKafka, KafkaConnection } from '../../common/kafka.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from './kafka.js'
import { openTestStore } from './store.js'
import { deferCleanup } from './cleanup.js'
import { testSigningKey, TRUSTED_WRITER } from './producer-trust.js'

/** One stored read event, as an analyst would query it. */
export interface StoredRead {
  event_id: string
  read_id: string
  principal_id: string
  principal_type: string
  on_behalf_of: string | null
  db_name: string
  table_name: string
  columns: string[]
  record_ids: string[]
  record_ids_complete: boolean
  row_count: number
  client_ip: string | null
  purpose: string | null
  trace_id: string | null
  /** The server's connection id the read ran on; '' when unknown. */
  db_session: string
  /** SHA-256 (hex) of the statement as the server received it; '' when unknown. */
  statement_digest: string
  producer_id: string
  producer_seq: number
}

export interface HookPipeline {
  kafka: Kafka
  topic: string
  store: Store
  producer: AuditProducer
  writer: ChainWriter
  /** Waits until every read the producer accepted is acknowledged and stored. */
  settle(): Promise<void>
  /** Every stored event, in chain order. */
  storedReads(): Promise<StoredRead[]>
}

/**
 * The real path of a hooked read: SDK producer → Kafka (fresh topic) → chain
 * writer → ClickHouse (fresh database). Stopped when the file's tests end.
 */
export interface HookPipelineOptions {
  producer?: Partial<AuditProducerConfigInput>
  /** Another broker than the shared one (a private broker a test stops and starts). */
  brokers?: string[]
  /** A topic the test made (signed batches bind their topic: an app's outbox replays only to it); otherwise a fresh one. */
  topic?: string
}

export async function startHookPipeline(options: HookPipelineOptions = {}): Promise<HookPipeline> {
  const connection = options.brokers ? KafkaConnection.parse({ brokers: options.brokers, clientId: `readtrail-test-${process.pid}` }) : testKafkaConnection()
  const kafka = options.brokers ? createKafka(connection, testLogger) : testKafka()
  const topic = options.topic ?? (await freshTopic(kafka, 2))
  const store = await openTestStore()
  const groupId = `${topic}-writers`
  const writer = createChainWriter({ trust: UNSIGNED_CHAINS,
    config: ChainWriterConfig.parse({ kafka: connection, topic, groupId, ...TRUSTED_WRITER }),
    kafka,
    store,
    registry: loadSchemaRegistry(),
    logger: testLogger,
  })
  await writer.start()
  // The hooks' tests run delivery on its own thread; the other pipeline tests
  // (which share a Kafka client) cover the in-thread path.
  // Signed with its service's key, as a deployed producer is: the writer stores nothing unsigned.
  const service = options.producer?.service ?? 'hook-test'
  const producer = await createAuditProducer(
    { kafka: connection, topic, service, signingKey: testSigningKey(service), deliveryThread: 'worker', ...options.producer },
    { logger: testLogger },
  )
  deferCleanup(async () => {
    await producer.close().catch(() => {})
    await writer.stop().catch(() => {})
  })
  return {
    kafka,
    topic,
    store,
    producer,
    writer,
    async settle() {
      await producer.flush()
      await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 120_000 })
    },
    async storedReads() {
      const rows = await store.queryRows<StoredRead>(
        `SELECT toString(event_id) AS event_id, toString(read_id) AS read_id, principal_id, toString(principal_type) AS principal_type, on_behalf_of,
                db_name, table_name, columns, record_ids, record_ids_complete, row_count, toString(client_ip) AS client_ip, purpose, trace_id,
                db_session, statement_digest, producer_id, producer_seq
         FROM ${store.table('access_log')} ORDER BY chain_id, seq`,
      )
      return rows.map((r) => ({ ...r, row_count: Number(r.row_count), producer_seq: Number(r.producer_seq), record_ids_complete: Boolean(r.record_ids_complete) }))
    },
  }
}
