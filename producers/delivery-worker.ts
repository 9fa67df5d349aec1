import { parentPort, workerData } from 'node:worker_threads'
import { createKafka } from '../common/kafka.js'
import { createLogger } from '../common/logger.js'
import type { Delivery, Durability } from './delivery.js'
import { serializeError, unpackBatch, type DeliveryThreadData, type FromDeliveryThread, type ToDeliveryThread } from './delivery-protocol.js'
import { openDelivery } from './open-delivery.js'

/**
 * The delivery thread: kafkajs (request encoding, CRC-32C, compression,
 * socket writes) and the outbox run here, off the application's event loop,
 * which keeps only validation and Avro encoding of each read.
 */
const port = parentPort!
const { config, logLevel } = workerData as DeliveryThreadData
const post = (msg: FromDeliveryThread) => port.postMessage(msg)
// The lines go to the application's logger on the caller's thread, not to this thread's stdout (redacted here already).
const logger = createLogger({ level: logLevel }, { write: (line: string) => post({ type: 'log', line }) }).child({ thread: 'delivery' })

let delivery: Delivery
try {
  delivery = await openDelivery(config, createKafka(config.kafka, logger), logger)
  post({ type: 'ready', stats: delivery.stats(), pending: delivery.pending() })
} catch (err) {
  post({ type: 'failed', error: serializeError(err) })
  port.close()
}

port.on('message', (msg: ToDeliveryThread) => {
  const answer = (work: Promise<unknown>) =>
    work.then(
      (value) => post({ type: 'reply', id: msg.id, value: value as Durability | boolean | undefined, stats: delivery.stats(), pending: delivery.pending() }),
      (err: unknown) => post({ type: 'reply', id: msg.id, error: serializeError(err), stats: delivery.stats(), pending: delivery.pending() }),
    )
  switch (msg.type) {
    case 'send':
      void answer(delivery.send(unpackBatch(msg.batch)))
      break
    case 'connect':
      void answer(delivery.connect().then(() => undefined))
      break
    case 'drained':
      void answer(delivery.drained(msg.timeoutMs))
      break
    case 'close':
      void answer(delivery.close().then(() => undefined)).then(() => port.close())
      break
  }
})
