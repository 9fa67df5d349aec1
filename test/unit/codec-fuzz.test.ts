import { performance } from 'node:perf_hooks'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IngestError } from '../../consumers/errors.js'
import { assertAccessEvent } from '../../consumers/validate-event.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec, HEADER_LENGTH } from '../../schemas/codec.js'
import { SchemaError } from '../../schemas/errors.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { recordIdsCountBomb, zigzagVarint } from '../helpers/avro-bombs.js'
import { makeEvent } from '../helpers/events.js'

/**
 * Property: whatever bytes arrive, decode + validate either returns an event
 * or throws a coded error (SchemaError from the codec, IngestError
 * EVENT_INVALID from the validator), never anything else, within a few
 * milliseconds and without allocating more than the message could hold.
 * The seed is fixed so a failure replays; FUZZ_SEED and FUZZ_RUNS override.
 */
const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_127)
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 4000)
/** About 1 s per 4000 runs on the 2-core machine; the margin is for a busy `npm test`. */
const TIMEOUT_MS = Math.max(10_000, RUNS * 3)
/** Per message, decode and validate. */
const TIME_BOUND_MS = 5
/**
 * A slow input is slow every time; a GC pause or a busy core is not. A
 * message slower than this is timed twice more and keeps its fastest time,
 * so the figures (and the bound) are what the bytes cost, not the noise.
 */
const RETIME_ABOVE_MS = 0.5
/** Heap growth while decoding one message; the 2^25 bomb took 250 MB. */
const HEAP_BOUND_BYTES = 8 * 1024 * 1024

const registry = loadSchemaRegistry()
const codec = createCodec(registry)
const writerType = registry.current.type

const seeds: Buffer[] = [
  codec.encode(makeEvent()),
  codec.encode(makeEvent({ on_behalf_of: 'boss', session_hash: Buffer.alloc(32, 7), client_ip: '2001:db8::1', purpose: 'audit', trace_id: 't-1' })),
  codec.encode(makeEvent({ record_ids: Array.from({ length: 40 }, (_, i) => `id-${i}`), columns: ['a', 'b', 'c', 'd'] })),
  codec.encode(makeEvent({ record_ids: [], client_ip: null, part_count: 3, part_index: 2 })),
]

interface Figures {
  messages: number
  decoded: number
  valid: number
  refused: Map<string, number>
  worstMs: number
  worstMessage: Buffer | null
  worstHeapBytes: number
  worstOutputPerByte: number
  times: number[]
}

const figures: Figures = { messages: 0, decoded: 0, valid: 0, refused: new Map(), worstMs: 0, worstMessage: null, worstHeapBytes: 0, worstOutputPerByte: 0, times: [] }

/** Characters, items and bytes a decoded value holds: what decoding had to allocate. */
function heldUnits(value: unknown): number {
  if (typeof value === 'string') return value.length
  if (Buffer.isBuffer(value)) return value.length
  if (Array.isArray(value)) return value.reduce((n: number, v: unknown) => n + 1 + heldUnits(v), 0)
  if (value !== null && typeof value === 'object') return Object.values(value).reduce((n: number, v: unknown) => n + heldUnits(v), 0)
  return 0
}

type Outcome = { kind: 'valid' | 'invalid-event'; event: unknown } | { kind: 'refused'; code: string }

function decodeAndValidate(message: Buffer): Outcome {
  let event: unknown
  try {
    event = codec.decode(message).event
  } catch (err) {
    if (!(err instanceof SchemaError)) throw new Error(`decode threw a ${(err as Error)?.constructor?.name}, not a SchemaError: ${String(err)}`)
    if (err.code !== 'MESSAGE_MALFORMED' && err.code !== 'SCHEMA_FINGERPRINT_UNKNOWN') throw new Error(`decode threw code ${err.code}`)
    return { kind: 'refused', code: `${err.code} ${String(err.details?.['field'] ?? '')}`.trim() }
  }
  try {
    assertAccessEvent(event)
    return { kind: 'valid', event }
  } catch (err) {
    if (!(err instanceof IngestError) || err.code !== 'EVENT_INVALID') throw new Error(`validate threw ${String(err)}`)
    return { kind: 'invalid-event', event }
  }
}

function timed(message: Buffer): { outcome: Outcome; ms: number; heap: number } {
  const heap0 = process.memoryUsage().heapUsed
  const t0 = performance.now()
  const outcome = decodeAndValidate(message)
  const ms = performance.now() - t0
  return { outcome, ms, heap: process.memoryUsage().heapUsed - heap0 }
}

/** The property every message must hold; records the figures. */
function checkMessage(message: Buffer): void {
  let run = timed(message)
  if (run.ms > RETIME_ABOVE_MS || run.heap > HEAP_BOUND_BYTES) {
    const again = [timed(message), timed(message)]
    run = { outcome: run.outcome, ms: Math.min(...again.map((r) => r.ms)), heap: Math.min(...again.map((r) => r.heap)) }
  }
  figures.messages++
  figures.times.push(run.ms)
  if (run.ms > figures.worstMs) {
    figures.worstMs = run.ms
    figures.worstMessage = message
  }
  figures.worstHeapBytes = Math.max(figures.worstHeapBytes, run.heap)
  const { outcome } = run
  if (outcome.kind === 'refused') {
    figures.refused.set(outcome.code, (figures.refused.get(outcome.code) ?? 0) + 1)
  } else {
    figures.decoded++
    if (outcome.kind === 'valid') figures.valid++
    expect(outcome.event).toBeTypeOf('object')
    // Every string char, array item and byte of the value came from at least one byte of the message.
    const perByte = heldUnits(outcome.event) / message.length
    figures.worstOutputPerByte = Math.max(figures.worstOutputPerByte, perByte)
    expect(perByte).toBeLessThanOrEqual(1)
  }
  expect(run.ms, `decode took ${run.ms.toFixed(2)} ms`).toBeLessThan(TIME_BOUND_MS)
  expect(run.heap, `decode grew the heap by ${run.heap} bytes`).toBeLessThan(HEAP_BOUND_BYTES)
}

/** Counts an attacker would write: the reported ones, Avro's extremes, and any 64-bit value. */
const hugeNumber = fc.oneof(
  fc.constantFrom(2n ** 31n, 2n ** 25n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 32n, 2n ** 53n, 2n ** 62n, 2n ** 63n - 1n, -(2n ** 63n), -1n, -2n),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.bigInt({ min: 0n, max: 4096n }),
)

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'varint'; at: number; value: bigint }
  | { op: 'truncate'; at: number }
  | { op: 'extend'; bytes: Uint8Array }
  | { op: 'insert'; at: number; bytes: Uint8Array }

const position = fc.nat({ max: 4096 })
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: position, value: fc.nat({ max: 255 }) }),
  { arbitrary: fc.record({ op: fc.constant('varint' as const), at: position, value: hugeNumber }), weight: 3 },
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
)

/** The length of the varint starting at `at` (a count, length or index, if the position lands on one). */
function varintLength(buf: Buffer, at: number): number {
  let n = 0
  while (at + n < buf.length && buf[at + n]! & 0x80) n++
  return Math.min(n + 1, buf.length - at)
}

/** Applies a mutation to the body only: the header stays valid, so the body is what is fuzzed. */
function mutate(message: Buffer, m: Mutation): Buffer {
  const bodyLength = message.length - HEADER_LENGTH
  const at = HEADER_LENGTH + (bodyLength > 0 && 'at' in m ? m.at % bodyLength : 0)
  switch (m.op) {
    case 'flip': {
      const out = Buffer.from(message)
      if (at < out.length) out[at] = out[at]! ^ (1 << m.bit)
      return out
    }
    case 'set': {
      const out = Buffer.from(message)
      if (at < out.length) out[at] = m.value
      return out
    }
    case 'varint':
      return Buffer.concat([message.subarray(0, at), zigzagVarint(m.value), message.subarray(at + varintLength(message, at))])
    case 'truncate':
      return message.subarray(0, at)
    case 'extend':
      return Buffer.concat([message, m.bytes])
    case 'insert':
      return Buffer.concat([message.subarray(0, at), m.bytes, message.subarray(at)])
  }
}

const header = seeds[0]!.subarray(0, HEADER_LENGTH)
const params = (runs: number) => ({ seed: SEED, numRuns: Math.max(1, Math.floor(runs)), endOnFailure: true })

describe('codec fuzzer', () => {
  beforeAll(() => {
    // The first calls compile avsc's readers and zod's checks: time the steady state, not the JIT.
    for (let i = 0; i < 200; i++) for (const seed of seeds) decodeAndValidate(seed)
  })

  afterAll(() => {
    const sorted = [...figures.times].sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
    const refused = [...figures.refused.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(', ')
    console.log(
      [
        `codec fuzzer (seed ${SEED}): ${figures.messages} messages, ${figures.decoded} decoded (${figures.valid} valid events), refused: ${refused}`,
        `  per message decode+validate: median ${at(0.5).toFixed(3)} ms, p99 ${at(0.99).toFixed(3)} ms, worst ${figures.worstMs.toFixed(3)} ms (a ${figures.worstMessage?.length ?? 0}-byte message)`,
        `  worst heap growth in one decode: ${(figures.worstHeapBytes / 1024).toFixed(0)} KiB; worst decoded chars+items per message byte: ${figures.worstOutputPerByte.toFixed(3)}`,
      ].join('\n'),
    )
  })

  it('mutated valid encodings: flipped bytes, huge varints, truncation, extension', () => {
    fc.assert(
      fc.property(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (seed, mutations) => {
        checkMessage(mutations.reduce((m, op) => mutate(m, op), seeds[seed]!))
      }),
      params(RUNS),
    )
  }, TIMEOUT_MS)

  it('random bodies behind a valid header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (body) => {
        checkMessage(Buffer.concat([header, body]))
      }),
      params(RUNS / 2),
    )
  }, TIMEOUT_MS)

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        checkMessage(Buffer.from(bytes))
      }),
      params(RUNS / 4),
    )
  }, TIMEOUT_MS)

  it('count bombs of any size in any valid event', () => {
    const event = fc.record({
      columns: fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 8 }),
      principal_id: fc.string({ minLength: 1, maxLength: 40 }),
      purpose: fc.option(fc.string({ maxLength: 40 })),
    })
    fc.assert(
      fc.property(event, fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), (fields, count) => {
        checkMessage(recordIdsCountBomb(codec, writerType, makeEvent(fields as Partial<AccessEvent>), count))
      }),
      params(RUNS / 8),
    )
  }, TIMEOUT_MS)

  it('reached the bounds it exists to test', () => {
    // A fuzzer that never produced a count or length too large for its message proves nothing.
    const fits = [...figures.refused.keys()].filter((k) => k.startsWith('MESSAGE_MALFORMED'))
    expect(fits.length).toBeGreaterThan(5)
    expect(figures.refused.get('MESSAGE_MALFORMED record_ids')).toBeGreaterThan(0)
    expect(figures.decoded).toBeGreaterThan(0)
  })
})
