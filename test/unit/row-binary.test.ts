import { describe, expect, it } from 'vitest'
import { RowBinaryWriter } from '../../store/row-binary.js'

function bytesOf(write: (w: RowBinaryWriter) => void, initialSize?: number): number[] {
  const w = new RowBinaryWriter(initialSize)
  write(w)
  return [...w.slice(0)]
}

describe('RowBinaryWriter.varint (unsigned LEB128)', () => {
  it.each([
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [16383, [0xff, 0x7f]],
    [16384, [0x80, 0x80, 0x01]],
    [2 ** 31, [0x80, 0x80, 0x80, 0x80, 0x08]],
    [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]],
    [2 ** 32 + 1, [0x81, 0x80, 0x80, 0x80, 0x10]],
  ])('%d', (value, expected) => {
    expect(bytesOf((w) => w.varint(value))).toEqual(expected)
  })
})

describe('RowBinaryWriter.uint64', () => {
  const le = (v: bigint) => {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(v)
    return [...b]
  }

  it.each([0, 1, 255, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 1_718_000_000_123_456, Number.MAX_SAFE_INTEGER])('from the number %d', (v) => {
    expect(bytesOf((w) => w.uint64(v))).toEqual(le(BigInt(v)))
  })

  it('from bigints, including 2^53-1 and 2^64-1', () => {
    expect(bytesOf((w) => w.uint64(2n ** 53n - 1n))).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00])
    expect(bytesOf((w) => w.uint64(2n ** 64n - 1n))).toEqual(Array<number>(8).fill(0xff))
    expect(bytesOf((w) => w.uint64(0x0102030405060708n))).toEqual([8, 7, 6, 5, 4, 3, 2, 1])
  })

  it('a number and the same bigint give the same bytes', () => {
    expect(bytesOf((w) => w.uint64(Number.MAX_SAFE_INTEGER))).toEqual(bytesOf((w) => w.uint64(BigInt(Number.MAX_SAFE_INTEGER))))
  })

  it('rejects values outside UInt64', () => {
    expect(() => new RowBinaryWriter().uint64(-1n)).toThrow(RangeError)
    expect(() => new RowBinaryWriter().uint64(2n ** 64n)).toThrow(RangeError)
    expect(() => new RowBinaryWriter().uint64(-1)).toThrow(RangeError)
  })
})

describe('RowBinaryWriter fixed-width and composite values', () => {
  it('writes UUIDs as two little-endian UInt64 halves, as ClickHouse stores them', () => {
    expect(bytesOf((w) => w.uuid('00112233-4455-6677-8899-aabbccddeeff'))).toEqual([
      0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,
    ])
  })

  it('writes int64, uint16 and uint32 little-endian', () => {
    expect(bytesOf((w) => w.int64(-2))).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    expect(bytesOf((w) => w.uint16(0x0102))).toEqual([0x02, 0x01])
    expect(bytesOf((w) => w.uint32(0x01020304))).toEqual([0x04, 0x03, 0x02, 0x01])
  })

  it('writes strings as a varint byte length and UTF-8', () => {
    expect(bytesOf((w) => w.string('é'))).toEqual([0x02, 0xc3, 0xa9])
    expect(bytesOf((w) => w.string(''))).toEqual([0x00])
    const long = 'x'.repeat(200)
    expect(bytesOf((w) => w.string(long))).toEqual([0xc8, 0x01, ...Buffer.from(long)])
  })

  it('writes arrays as a varint count then each item', () => {
    expect(bytesOf((w) => w.stringArray(['a', 'bc']))).toEqual([0x02, 0x01, 0x61, 0x02, 0x62, 0x63])
    expect(bytesOf((w) => w.stringArray([]))).toEqual([0x00])
  })

  it('writes Nullable as a 1 byte flag, then the value only when present', () => {
    expect(bytesOf((w) => w.nullableString(null))).toEqual([0x01])
    expect(bytesOf((w) => w.nullableString('a'))).toEqual([0x00, 0x01, 0x61])
    // An empty string is a value, not null.
    expect(bytesOf((w) => w.nullableString(''))).toEqual([0x00, 0x00])
  })

  it('fixed() refuses a value of the wrong size', () => {
    expect(() => new RowBinaryWriter().fixed(Buffer.alloc(31), 32)).toThrow(/expected 32 bytes, got 31/)
    expect(bytesOf((w) => w.fixed(Buffer.from([1, 2, 3]), 3))).toEqual([1, 2, 3])
  })
})

describe('RowBinaryWriter buffer management', () => {
  it('grows past its initial size without losing earlier bytes', () => {
    const w = new RowBinaryWriter(4)
    const expected: number[] = []
    for (let i = 0; i < 1000; i++) {
      w.uint32(i)
      w.string(`v${i}`)
      const s = Buffer.from(`v${i}`)
      expected.push(i & 0xff, (i >> 8) & 0xff, 0, 0, s.length, ...s)
    }
    expect(w.length).toBe(expected.length)
    expect([...w.slice(0)]).toEqual(expected)
  })

  it('grows for a single write much larger than the buffer', () => {
    const big = Buffer.alloc(100_000, 0xab)
    const w = new RowBinaryWriter(8)
    w.uint8(1)
    w.bytes(big)
    expect(w.length).toBe(100_001)
    expect(w.view(1).equals(big)).toBe(true)
  })

  it('reset() starts over; slice() is a copy and view() is not', () => {
    const w = new RowBinaryWriter(16)
    w.uint8(1)
    w.uint8(2)
    const copy = w.slice(0)
    const view = w.view(0)
    w.reset()
    expect(w.length).toBe(0)
    w.uint8(9)
    expect([...copy]).toEqual([1, 2])
    expect(view[0]).toBe(9)
  })
})
