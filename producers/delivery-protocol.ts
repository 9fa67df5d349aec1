import type { Message } from 'kafkajs'
import { isReadtrailError, type ReadtrailError } from '../common/errors.js'
import type { ErrorCode } from '../common/error-codes.js'
import type { AuditProducerConfig } from './config.js'
import type { DeliveryStats, Durability } from './delivery.js'
import { ProducerError } from './errors.js'
import { OutboxError } from './outbox/errors.js'

/** What the delivery thread needs from the producer's config (no secrets: the session key stays on the caller's thread). */
export type DeliveryThreadConfig = Pick<AuditProducerConfig, 'kafka' | 'topic' | 'ackTimeoutMs' | 'compression' | 'maxBatchMessages' | 'maxBatchBytes' | 'outbox'>

export interface DeliveryThreadData {
  config: DeliveryThreadConfig
  logLevel: string
}

/** A batch as it crosses threads: keys as strings, values packed in one transferred buffer. */
export interface PackedBatch {
  keys: (string | null)[]
  lengths: number[]
  values: ArrayBuffer
}

export type ToDeliveryThread =
  | { type: 'send'; id: number; batch: PackedBatch }
  | { type: 'connect'; id: number }
  | { type: 'drained'; id: number; timeoutMs: number }
  | { type: 'close'; id: number }

export interface SerializedError {
  code: string | undefined
  name: string
  message: string
  retriable: boolean
  details: Record<string, unknown> | undefined
}

export type FromDeliveryThread =
  | { type: 'ready'; stats: DeliveryStats; pending: number }
  | { type: 'failed'; error: SerializedError }
  /** A pino line of the delivery thread, logged again on the application's logger (never the thread's own stdout). */
  | { type: 'log'; line: string }
  | { type: 'reply'; id: number; value?: Durability | boolean; error?: SerializedError; stats: DeliveryStats; pending: number }

export function packBatch(messages: readonly Message[]): { batch: PackedBatch; transfer: ArrayBuffer[] } {
  let total = 0
  const lengths = messages.map((m) => {
    const n = (m.value as Buffer).length
    total += n
    return n
  })
  // Not Buffer.concat: small results come from Node's shared pool, and
  // transferring the pool's ArrayBuffer would detach it for everyone.
  const packed = Buffer.allocUnsafeSlow(total)
  let at = 0
  for (const m of messages) at += (m.value as Buffer).copy(packed, at)
  const values = packed.buffer as ArrayBuffer
  return { batch: { keys: messages.map((m) => (m.key === null || m.key === undefined ? null : String(m.key))), lengths, values }, transfer: [values] }
}

export function unpackBatch(batch: PackedBatch): Message[] {
  let at = 0
  return batch.lengths.map((n, i) => {
    const value = Buffer.from(batch.values, at, n)
    at += n
    return { key: batch.keys[i] ?? null, value }
  })
}

export function serializeError(err: unknown): SerializedError {
  if (isReadtrailError(err)) return { code: err.code, name: err.name, message: err.message, retriable: err.retriable, details: err.details }
  const e = err instanceof Error ? err : new Error(String(err))
  return { code: undefined, name: e.name, message: e.message, retriable: true, details: undefined }
}

/** The coded error the delivery thread raised, rebuilt on the caller's thread with the same code and flags. */
export function deserializeError(e: SerializedError): ReadtrailError {
  // The code alone decides retriable (common/error-codes.ts), on either side.
  const options = { details: e.details }
  if (e.code?.startsWith('OUTBOX_')) return new OutboxError(e.code as ErrorCode, e.message, options)
  if (e.code !== undefined) return new ProducerError(e.code as ErrorCode, e.message, options)
  return new ProducerError('PUBLISH_FAILED', `${e.name}: ${e.message}`, options)
}
