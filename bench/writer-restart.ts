/**
 * What resuming only from signed heads costs a restarted chain writer.
 *
 *   npx tsx bench/writer-restart.ts [--unsigned=10000] [--signed=10000] [--partitions=3] [--rounds=3]
 *
 * A store holds `signed` events under checkpoints and, as a writer killed
 * before its next checkpoint leaves them, `unsigned` more stored and
 * committed but never signed. Ingest (consumers/ingest.ts, as `readtrail
 * consume` runs it) is then started, and the time is taken from start() until
 * a probe event produced right after start is stored: the restart-to-ready
 * time, which includes re-reading every unsigned row's message from Kafka and
 * re-deriving the row byte for byte. The same is measured after a clean stop
 * (every row signed, nothing to re-derive).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Partitioners, type Kafka } from 'kafkajs'
import { checkpointTopicOf } from '../checkpoints/checkpoint-topic.js'
import { generateKeyFiles, loadSigningKey, type SigningKey } from '../checkpoints/keys.js'
import { UNSIGNED_CHAINS } from '../consumers/chain-resume.js'
import { createChainWriter } from '../consumers/chain-writer.js'
import { ChainWriterConfig } from '../consumers/config.js'
import { createIngest, type Ingest } from '../consumers/ingest.js'
import { waitForCatchUp } from '../consumers/lag.js'
import { createCodec } from '../schemas/codec.js'
import { loadSchemaRegistry } from '../schemas/registry.js'
import type { Store } from '../store/store.js'
import {
  benchKafka,
  benchKafkaConnection,
  benchLogger,
  createBenchTopic,
  deleteBenchTopics,
  machineLine,
  median,
  openBenchStore,
  printTable,
  realisticEvents,
} from './bench-support.js'
import { KAFKA_OPTIONS, parseBenchArgs } from './args.js'

const { unsigned: UNSIGNED, signed: SIGNED, partitions: PARTITIONS, rounds: ROUNDS } = parseBenchArgs(
  'What resuming only from signed heads costs a restarted chain writer.',
  {
    unsigned: { type: 'number', default: 10_000, help: 'rows stored after the newest signed checkpoint' },
    signed: { type: 'number', default: 10_000, help: 'rows covered by signed checkpoints' },
    partitions: { type: 'number', default: 3, help: 'partitions of the bench topic' },
    rounds: { type: 'number', default: 3, help: 'restarts timed' },
    ...KAFKA_OPTIONS,
  },
)
const registry = loadSchemaRegistry()
const codec = createCodec(registry)

async function produce(kafka: Kafka, topic: string, count: number): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const events = realisticEvents(count)
  for (let i = 0; i < events.length; i += 1000) {
    await producer.send({ topic, acks: -1, messages: events.slice(i, i + 1000).map((e, k) => ({ partition: (i + k) % PARTITIONS, value: codec.encode(e) })) })
  }
  await producer.disconnect()
}

interface Deployment {
  key: SigningKey
  logPath: string
  checkpointTopic: string
}

function ingestOf(kafka: Kafka, store: Store, topic: string, groupId: string, d: Deployment): Ingest {
  return createIngest({
    kafka,
    store,
    logger: benchLogger,
    writer: { kafka: benchKafkaConnection(), topic, groupId },
    checkpoints: { key: d.key, logPath: d.logPath, topic: d.checkpointTopic, intervalMs: 3_600_000 },
  })
}

/** start() → a probe event produced right after it is stored; returns ms and what the writer re-derived. */
async function restart(kafka: Kafka, store: Store, topic: string, groupId: string, d: Deployment, unsigned: number): Promise<{ ms: number; rederived: number }> {
  const ingest = ingestOf(kafka, store, topic, groupId, d)
  const t0 = performance.now()
  await ingest.start()
  await produce(kafka, topic, 1)
  // Ready: the probe stored and every unsigned row vouched for (the probe's partition may not hold them all).
  while (ingest.stats().writer.stored < 1 || ingest.stats().writer.rederived < unsigned) await new Promise((r) => setTimeout(r, 5))
  const ms = performance.now() - t0
  await ingest.stop()
  return { ms, rederived: ingest.stats().writer.rederived }
}

async function main(): Promise<void> {
  const kafka = benchKafka()
  const bench = openBenchStore()
  const topics: string[] = []
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-bench-restart-'))
  const rows: Record<string, string | number>[] = []
  try {
    generateKeyFiles(join(dir, 'checkpoint.key'))
    const key = loadSigningKey(join(dir, 'checkpoint.key'))
    for (let round = 1; round <= ROUNDS; round++) {
      const topic = await createBenchTopic(kafka, topics, PARTITIONS, 'restart')
      const d: Deployment = { key, logPath: join(dir, `${topic}.jsonl`), checkpointTopic: checkpointTopicOf(topic) }
      topics.push(d.checkpointTopic)
      const store = await bench.freshDatabase('restart')
      const groupId = `${topic}-writer`
      // Signed history, then a clean stop: the final checkpoint covers it all.
      await produce(kafka, topic, SIGNED)
      const first = ingestOf(kafka, store, topic, groupId, d)
      await first.start()
      await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 300_000, pollMs: 50 })
      await first.stop()
      const clean = await restart(kafka, store, topic, groupId, d, 0)
      // The unsigned tail a crash leaves: stored and committed by a writer with no signer.
      await produce(kafka, topic, UNSIGNED)
      const crashed = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: benchKafkaConnection(), topic, groupId }), kafka, store, registry, logger: benchLogger })
      await crashed.start()
      await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 300_000, pollMs: 50 })
      await crashed.stop()
      const afterCrash = await restart(kafka, store, topic, groupId, d, UNSIGNED)
      rows.push({ round, 'clean restart ms': Math.round(clean.ms), [`restart with ${UNSIGNED} unsigned rows ms`]: Math.round(afterCrash.ms), rederived: afterCrash.rederived })
    }
    printTable(`writer restart to ready (${PARTITIONS} partitions, ${SIGNED} signed rows, ${machineLine()})`, rows)
    const cleanMs = median(rows.map((r) => Number(r['clean restart ms'])))
    const crashMs = median(rows.map((r) => Number(r[`restart with ${UNSIGNED} unsigned rows ms`])))
    process.stdout.write(`median: clean ${cleanMs} ms, with ${UNSIGNED} unsigned rows ${crashMs} ms: re-deriving costs ${Math.round(crashMs - cleanMs)} ms (${((crashMs - cleanMs) / UNSIGNED * 1000).toFixed(1)} µs per row)\n`)
  } finally {
    await deleteBenchTopics(kafka, topics)
    await bench.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
