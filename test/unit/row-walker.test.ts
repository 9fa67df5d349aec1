import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { emptyChain, GENESIS_HASH, linkEntries } from '../../consumers/chain.js'
import { VerificationError } from '../../integrity/errors.js'
import { ACCESS_LOG_LAYOUT, COL, RowLayout, RowWalker, type RowView } from '../../integrity/row-walker.js'
import { SegmentScanner } from '../../integrity/scan-worker.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { writeCanonical } from '../../store/access-log-columns.js'
import { RowBinaryWriter } from '../../store/row-binary.js'
import { chainedRow } from '../helpers/chained-row.js'
import { makeEvent } from '../helpers/events.js'
import { thrownBy } from '../helpers/thrown.js'

const CHAIN = 'unit-topic/0'
const INGESTED_AT = Date.UTC(2026, 10, 27, 12) * 1000
/** Rows come as signed wire-2 messages of two events each: the place and key columns hold more than their defaults. */
const PER_MESSAGE = 2
const KEY_ID = 'ab'.repeat(32)
const placeOf = (i: number) => ({ offset: BigInt(Math.floor(i / PER_MESSAGE)), index: i % PER_MESSAGE, events: PER_MESSAGE, keyId: KEY_ID })

/** Events that exercise every column kind: NULL and non-NULL, long strings and arrays (two-byte lengths), IPv6, each enum. */
function variedEvents(): AccessEvent[] {
  return [
    makeEvent({ producer_id: 'test-producer' }),
    makeEvent({
      producer_id: 'test-producer',
      principal_type: 'service',
      action: 'export',
      outcome: 'denied',
      on_behalf_of: 'clerk.on.behalf',
      session_hash: Buffer.alloc(32, 0xab),
      client_ip: '2001:db8::7',
      purpose: 'p'.repeat(300),
      trace_id: 'trace-1',
      columns: ['id'],
      record_ids: [],
      record_ids_complete: false,
      row_count: 0,
      query_fingerprint: `SELECT ${'x, '.repeat(100)}y FROM t`,
    }),
    makeEvent({ principal_type: 'system', action: 'search', outcome: 'error', client_ip: null, producer_id: 'other-producer' }),
    // Longer than the 1 KiB head the walker first joins to finish a row cut by a chunk boundary.
    makeEvent({ producer_id: 'test-producer', record_ids: Array.from({ length: 600 }, (_, i) => `record-${i}`), row_count: 600 }),
  ]
}

interface Encoded {
  bytes: Buffer
  /** [start, end) of each row. */
  rows: [number, number][]
  hashes: Buffer[]
}

/** RowBinary of `SELECT <ACCESS_LOG_COLUMNS>, hash` for rows linked as the chain writer links them. */
function encodeChain(events: readonly AccessEvent[], options: { chainId?: string; firstSeq?: number; prevHash?: Buffer } = {}): Encoded {
  const w = new RowBinaryWriter()
  const rows: [number, number][] = []
  const hashes: Buffer[] = []
  let prev = options.prevHash ?? GENESIS_HASH
  events.forEach((event, i) => {
    const start = w.length
    const place = placeOf(i)
    const row = chainedRow(event, {
      chain_id: options.chainId ?? CHAIN,
      seq: (options.firstSeq ?? 1) + i,
      prev_hash: prev,
      kafka_offset: place.offset,
      message_index: place.index,
      message_events: place.events,
      ingested_at: INGESTED_AT,
      key_id: place.keyId,
    })
    writeCanonical(w, row)
    prev = createHash('sha256').update(w.view(start)).digest()
    w.bytes(prev)
    rows.push([start, w.length])
    hashes.push(prev)
  })
  return { bytes: w.slice(0), rows, hashes }
}

interface Seen {
  seq: number
  selfOk: boolean
  canonical: boolean
  hash: string
  prevHash: string
  eventId: string
  chainId: string
  producerId: string
  producerSeq: number
  offsets: number[]
}

const seen = (r: RowView): Seen => ({
  seq: r.uint64(COL.seq),
  selfOk: r.selfOk,
  canonical: r.canonical,
  hash: r.hex(COL.hash, 32),
  prevHash: r.hex(COL.prev_hash, 32),
  eventId: r.uuid(COL.event_id),
  chainId: r.string(COL.chain_id),
  producerId: r.string(COL.producer_id),
  producerSeq: r.uint64(COL.producer_seq),
  offsets: [...r.offsets].map((o) => o - r.start),
})

/** Walks chunks as one stream, re-hashing; returns every row, or throws what the walker threw. */
function walk(...chunks: Buffer[]): Seen[] {
  const out: Seen[] = []
  const walker = new RowWalker(ACCESS_LOG_LAYOUT, (r) => out.push(seen(r)), { rehash: true, describe: () => `chain ${CHAIN}` })
  for (const c of chunks) walker.push(c)
  walker.finish()
  return out
}

/** Replaces a row's stored hash with the hash of its (possibly edited) bytes: only the canonical check can object. */
function rehashRow(bytes: Buffer, [start, end]: [number, number]): void {
  createHash('sha256').update(bytes.subarray(start, end - 32)).digest().copy(bytes, end - 32)
}

describe('RowWalker over access_log rows', () => {
  const events = variedEvents()
  const enc = encodeChain(events)

  it('encodes what the chain writer hashes (linkEntries gives the same hashes)', () => {
    const linked = linkEntries(emptyChain(CHAIN), events.map((event, i) => ({ event, ...placeOf(i), schemaVersion: 1 })), INGESTED_AT)
    // The rows linkEntries stores are byte for byte the rows this test encodes.
    expect(linked.rows.equals(enc.bytes)).toBe(true)
    expect(linked.count).toBe(enc.hashes.length)
  })

  it('re-hashes good rows as self_ok and reads their fields', () => {
    const rows = walk(enc.bytes)
    expect(rows).toHaveLength(4)
    expect(rows.every((r) => r.selfOk && r.canonical)).toBe(true)
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4])
    expect(rows.map((r) => r.eventId)).toEqual(events.map((e) => e.event_id))
    expect(rows.map((r) => r.producerId)).toEqual(events.map((e) => e.producer_id))
    expect(rows.map((r) => r.producerSeq)).toEqual(events.map((e) => e.producer_seq))
    expect(rows.map((r) => r.hash)).toEqual(enc.hashes.map((h) => h.toString('hex')))
    expect(rows.map((r) => r.prevHash)).toEqual([GENESIS_HASH, ...enc.hashes.slice(0, 3)].map((h) => h.toString('hex')))
    expect(new Set(rows.map((r) => r.chainId))).toEqual(new Set([CHAIN]))
    expect(rows.map((r) => r.offsets.at(-1))).toEqual(enc.rows.map(([s, e]) => e - s))
  })

  it('never passes a row with any single byte flipped: self_ok is false or the stream does not parse', () => {
    for (let at = 0; at < enc.bytes.length; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bytes = Buffer.from(enc.bytes)
        bytes[at]! ^= mask
        let rows: Seen[]
        try {
          rows = walk(bytes)
        } catch (err) {
          expect(err).toBeInstanceOf(VerificationError)
          expect((err as VerificationError).code).toBe('VERIFY_FAILED')
          continue
        }
        expect(rows.some((r) => !r.selfOk), `byte ${at} ^ ${mask} passed`).toBe(true)
      }
    }
  })

  it('gives the same rows whatever the chunk boundaries', () => {
    const whole = walk(enc.bytes)
    for (let k = 0; k <= enc.bytes.length; k++) {
      expect(walk(enc.bytes.subarray(0, k), enc.bytes.subarray(k))).toEqual(whole)
    }
    for (let k = 0; k + 37 <= enc.bytes.length; k += 13) {
      expect(walk(enc.bytes.subarray(0, k), enc.bytes.subarray(k, k + 37), enc.bytes.subarray(k + 37))).toEqual(whole)
    }
    expect(walk(...Array.from(enc.bytes, (_, i) => enc.bytes.subarray(i, i + 1)))).toEqual(whole)
  })

  describe('values ClickHouse would never write make self_ok false even under a matching hash', () => {
    const offsetsOf = (bytes: Buffer) => walk(bytes).map((r) => r.offsets)
    const edited = (row: number, edit: (bytes: Buffer, rowStart: number, offsets: number[]) => void): Seen => {
      const bytes = Buffer.from(enc.bytes)
      edit(bytes, enc.rows[row]![0], offsetsOf(enc.bytes)[row]!)
      rehashRow(bytes, enc.rows[row]!)
      return walk(bytes)[row]!
    }
    const col = (name: string) => ACCESS_LOG_LAYOUT.indexOf(name)

    it('a re-hashed row that is unchanged, or changed to another valid value, passes (control)', () => {
      expect(edited(0, () => {}).selfOk).toBe(true)
      expect(edited(0, (b, s, o) => void (b[s + o[col('action')]!] = 3)).selfOk).toBe(true)
      expect(edited(0, (b, s, o) => void (b[s + o[col('record_ids_complete')]!] = 0)).selfOk).toBe(true)
    })

    it.each([2, 0xff])('Bool %d', (value) => {
      const row = edited(0, (b, s, o) => void (b[s + o[col('record_ids_complete')]!] = value))
      expect([row.selfOk, row.canonical]).toEqual([false, false])
    })

    it.each([
      ['principal_type', 0],
      ['principal_type', 4],
      ['action', 0x80],
      ['outcome', 9],
    ])('Enum8 %s code %d', (name, value) => {
      const row = edited(1, (b, s, o) => void (b[s + o[col(name)]!] = value))
      expect([row.selfOk, row.canonical]).toEqual([false, false])
    })

    it.each([
      ['on_behalf_of', 0],
      ['purpose', 0],
      ['trace_id', 0],
      ['session_hash', 0],
      ['client_ip', 2],
    ] as const)('NULL flag 2 in %s (read as NULL by ClickHouse)', (name, rowIndex) => {
      const row = edited(rowIndex, (b, s, o) => {
        expect(b[s + o[col(name)]!]).toBe(1)
        b[s + o[col(name)]!] = 2
      })
      expect([row.selfOk, row.canonical]).toEqual([false, false])
    })

    it('a padded (non-minimal) length varint', () => {
      const [start, end] = enc.rows[0]!
      const at = start + walk(enc.bytes)[0]!.offsets[col('service')]!
      const len = enc.bytes[at]!
      const bytes = Buffer.concat([enc.bytes.subarray(start, at), Buffer.from([len | 0x80, 0x00]), enc.bytes.subarray(at + 1, end)])
      rehashRow(bytes, [0, bytes.length])
      const [row] = walk(bytes)
      expect([row!.selfOk, row!.canonical]).toEqual([false, false])
    })
  })

  describe('a stream that does not parse is VERIFY_FAILED, naming where', () => {
    it('truncated inside a row', () => {
      const err = thrownBy(VerificationError, () => walk(enc.bytes.subarray(0, enc.bytes.length - 1)))
      expect(err.code).toBe('VERIFY_FAILED')
      expect(err.message).toMatch(/ends inside a row.*chain unit-topic\/0/)
    })

    it('a length varint longer than four bytes', () => {
      const at = enc.rows[0]![0] + walk(enc.bytes)[0]!.offsets[COL.chain_id]!
      const bytes = Buffer.concat([enc.bytes.subarray(0, at), Buffer.from([0x81, 0x80, 0x80, 0x80, 0x01]), enc.bytes.subarray(at)])
      expect((thrownBy(VerificationError, () => walk(bytes)) as Error).message).toMatch(/runs past four bytes/)
    })

    it('a length beyond any row, without waiting for the stream to deliver it', () => {
      const at = enc.rows[0]![0] + walk(enc.bytes)[0]!.offsets[COL.chain_id]!
      const bytes = Buffer.concat([enc.bytes.subarray(0, at), Buffer.from([0xff, 0xff, 0xff, 0x7f])])
      const walker = new RowWalker(ACCESS_LOG_LAYOUT, () => {}, { rehash: true, describe: () => 'here' })
      const err = thrownBy(VerificationError, () => walker.push(bytes))
      expect(err.code).toBe('VERIFY_FAILED')
      expect(err.message).toMatch(/length of 268435455 is beyond/)
    })

    it('names the chain and the seq it had reached', () => {
      const scanner = new SegmentScanner({ chain_id: CHAIN, lo: 0, hi: null, checkpoint_seqs: [] }, 10)
      scanner.push(enc.bytes.subarray(0, enc.rows[2]![0] + 10))
      const err = thrownBy(VerificationError, () => scanner.finish())
      expect(err.code).toBe('VERIFY_FAILED')
      expect(err.message).toMatch(/chain unit-topic\/0, row after seq 2/)
    })
  })
})

describe('RowLayout', () => {
  it.each(['Decimal(10, 2)', 'Map(String, String)', 'Enum16(\'a\' = 1)', 'Float64', 'Nullable(Float32)', 'FixedString(x)', 'DateTime64(3, UTC)', 'Enum8()', 'Tuple(String)'])(
    'refuses a type it cannot walk: %s',
    (type) => {
      expect(thrownBy(VerificationError, () => new RowLayout([{ name: 'x', type }])).details).toEqual({ column: 'x', type })
    },
  )

  it('walks nested and zoned types', () => {
    const layout = new RowLayout([
      { name: 'a', type: 'Array(Nullable(String))' },
      { name: 't', type: "DateTime64(3, 'Europe/Rome')" },
      { name: 'e', type: "Enum8('it''s' = -1, 'b' = 7)" },
      { name: 'l', type: 'LowCardinality(Nullable(String))' },
    ])
    const w = new RowBinaryWriter()
    w.varint(3)
    w.nullableString('x')
    w.nullableString(null)
    w.nullableString('yz')
    w.int64(-5)
    w.uint8(0xff)
    w.nullableString('lc')
    const rows: { t: number; end: number; canonical: boolean }[] = []
    const walker = new RowWalker(layout, (r) => rows.push({ t: r.int64(1), end: r.end, canonical: r.canonical }), { rehash: false, describe: () => '' })
    walker.push(w.slice(0))
    walker.finish()
    expect(rows).toEqual([{ t: -5, end: w.length, canonical: true }])
  })
})

describe('SegmentScanner (the suspect rule, also the in-DB SQL rule)', () => {
  const events = Array.from({ length: 8 }, (_, i) => makeEvent({ producer_id: 'test-producer', producer_seq: i + 1 }))
  const enc = encodeChain(events)
  const rowBytes = (seq: number) => enc.bytes.subarray(...enc.rows[seq - 1]!)
  const scan = (seqs: readonly (number | Buffer)[], request: { lo?: number; hi?: number | null; checkpoints?: number[]; maxSuspects?: number } = {}) => {
    const scanner = new SegmentScanner({ chain_id: CHAIN, lo: request.lo ?? 0, hi: request.hi ?? null, checkpoint_seqs: request.checkpoints ?? [] }, request.maxSuspects ?? 100)
    scanner.push(Buffer.concat(seqs.map((s) => (typeof s === 'number' ? rowBytes(s) : s))))
    return scanner.finish()
  }
  const hex = (seq: number) => enc.hashes[seq - 1]!.toString('hex')

  it('an intact segment from seq 0: no suspects, first links to genesis', () => {
    const result = scan([1, 2, 3, 4, 5, 6, 7, 8], { checkpoints: [2, 8, 99] })
    expect(result).toEqual({
      chain_id: CHAIN,
      lo: 0,
      hi: null,
      rows: 8,
      first: { seq: 1, prev_hash: GENESIS_HASH.toString('hex'), self_ok: true },
      last: { seq: 8, hash: hex(8) },
      suspects: [],
      suspects_truncated: false,
      checkpoint_rows: [
        { chain_id: CHAIN, seq: 2, hash: hex(2), self_ok: true },
        { chain_id: CHAIN, seq: 8, hash: hex(8), self_ok: true },
      ],
      producer_counts: { 'test-producer': 8 },
    })
  })

  it('a later segment has no predecessor for its first row', () => {
    const result = scan([4, 5, 6], { lo: 4, hi: 6 })
    expect(result.suspects).toEqual([])
    expect(result.first).toEqual({ seq: 4, prev_hash: hex(3), self_ok: true })
    expect(result.last).toEqual({ seq: 6, hash: hex(6) })
  })

  it('a missing first row is a suspect against genesis (seq 0)', () => {
    expect(scan([2, 3]).suspects).toEqual([{ chain_id: CHAIN, seq: 2, prev_seq: 0 }])
  })

  it('a gap, a duplicate and an edited row', () => {
    const edited = Buffer.from(rowBytes(6))
    edited[edited.length - 40]! ^= 1
    const result = scan([1, 2, 4, 5, 5, edited, 7, 8], { checkpoints: [5] })
    expect(result.suspects).toEqual([
      { chain_id: CHAIN, seq: 4, prev_seq: 2 },
      { chain_id: CHAIN, seq: 5, prev_seq: 5 },
      { chain_id: CHAIN, seq: 6, prev_seq: 5 },
    ])
    expect(result.checkpoint_rows.map((r) => r.seq)).toEqual([5, 5])
  })

  it('caps suspects and says so', () => {
    const result = scan([2, 4, 6, 8], { maxSuspects: 2 })
    expect(result.suspects.map((s) => s.seq)).toEqual([2, 4])
    expect(result.suspects_truncated).toBe(true)
  })

  it('a first row that does not hash is reported in first.self_ok for the caller to link', () => {
    const edited = Buffer.from(rowBytes(4))
    edited[edited.length - 40]! ^= 1
    const result = scan([edited, 5], { lo: 4 })
    expect(result.suspects).toEqual([])
    expect(result.first?.self_ok).toBe(false)
  })

  it.each([
    ['out of (seq, hash) order', [1, 3, 2], {}, /out of \(seq, hash\) order at seq 2/],
    ['outside the asked range', [1, 2, 3], { hi: 2 }, /seq 3 .* asked for seqs 0\.\.2/],
    ['below the asked range', [2, 3], { lo: 3 }, /seq 2 .* asked for seqs 3\.\./],
  ] as const)('ClickHouse answering %s is VERIFY_FAILED', (_what, seqs, request, message) => {
    const err = thrownBy(VerificationError, () => scan(seqs, request))
    expect(err.code).toBe('VERIFY_FAILED')
    expect(err.message).toMatch(message)
  })

  it('a row of another chain is VERIFY_FAILED', () => {
    const other = encodeChain([makeEvent()], { chainId: 'other/0' })
    const err = thrownBy(VerificationError, () => scan([1, other.bytes]))
    expect(err.message).toMatch(/row of chain "other\/0" when asked for chain unit-topic\/0/)
  })

  it('orders equal seqs by hash bytes, as ClickHouse sorts FixedString', () => {
    const twin = encodeChain([makeEvent()], { firstSeq: 2, prevHash: enc.hashes[0] })
    const [low, high] = Buffer.compare(twin.hashes[0]!, enc.hashes[1]!) < 0 ? [twin.bytes, rowBytes(2)] : [rowBytes(2), twin.bytes]
    expect(scan([1, low, high]).suspects).toEqual([{ chain_id: CHAIN, seq: 2, prev_seq: 2 }])
    expect((thrownBy(VerificationError, () => scan([1, high, low])) as Error).message).toMatch(/out of \(seq, hash\) order/)
  })
})
