import { describe, expect, it } from 'vitest'
import { deserializeError, packBatch, serializeError, unpackBatch } from '../../producers/delivery-protocol.js'
import { ProducerError } from '../../producers/errors.js'
import { OutboxError } from '../../producers/outbox/errors.js'

describe('delivery thread protocol', () => {
  it('packs a batch into one transferable buffer and unpacks the same keys and bytes', () => {
    const messages = [
      { key: 'a', value: Buffer.from([0xc3, 0x01, 1, 2, 3]) },
      { key: null, value: Buffer.alloc(0) },
      { key: 'c', value: Buffer.from('x'.repeat(5000)) },
    ]
    const { batch, transfer } = packBatch(messages)
    expect(transfer).toEqual([batch.values])
    // Never Node's shared pool: transferring it would detach every small Buffer.
    expect(batch.values.byteLength).toBe(5005)
    const back = unpackBatch(structuredClone(batch))
    expect(back.map((m) => m.key)).toEqual(['a', null, 'c'])
    expect(back.map((m) => Buffer.compare(m.value as Buffer, messages[back.indexOf(m)]!.value))).toEqual([0, 0, 0])
  })

  it('rebuilds coded errors with their code, flag and class', () => {
    const full = deserializeError(serializeError(new OutboxError('OUTBOX_FULL', 'outbox is full', { details: { max_bytes: 4096 } })))
    expect(full).toBeInstanceOf(OutboxError)
    expect(full).toMatchObject({ code: 'OUTBOX_FULL', retriable: true, details: { max_bytes: 4096 }, message: 'outbox is full' })
    expect(deserializeError(serializeError(new ProducerError('PUBLISH_FAILED', 'no ack')))).toBeInstanceOf(ProducerError)
    const plain = deserializeError(serializeError(new TypeError('boom')))
    expect(plain).toMatchObject({ code: 'PUBLISH_FAILED', message: 'TypeError: boom', retriable: true })
  })
})
