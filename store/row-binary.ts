/**
 * A growable buffer that writes ClickHouse RowBinary values. The chain hash is
 * SHA-256 over these exact bytes, and ClickHouse re-derives the same bytes with
 * formatRow('RowBinary', …), so any drift here breaks verification.
 */
export class RowBinaryWriter {
  private buf: Buffer
  private pos = 0

  constructor(initialSize = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(64, initialSize))
  }

  get length(): number {
    return this.pos
  }

  reset(): void {
    this.pos = 0
  }

  /** A copy of bytes [start, end). */
  slice(start: number, end: number = this.pos): Buffer {
    return Buffer.from(this.buf.subarray(start, end))
  }

  /** A view of bytes [start, end), valid until the next write. */
  view(start: number, end: number = this.pos): Buffer {
    return this.buf.subarray(start, end)
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + extra) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  uint8(v: number): void {
    this.ensure(1)
    this.buf[this.pos++] = v
  }

  uint16(v: number): void {
    this.ensure(2)
    this.pos = this.buf.writeUInt16LE(v, this.pos)
  }

  uint32(v: number): void {
    this.ensure(4)
    this.pos = this.buf.writeUInt32LE(v, this.pos)
  }

  /** UInt64 from a safe integer or a bigint. */
  uint64(v: number | bigint): void {
    this.ensure(8)
    if (typeof v === 'bigint') {
      this.pos = this.buf.writeBigUInt64LE(v, this.pos)
    } else {
      this.buf.writeUInt32LE(v % 0x1_0000_0000, this.pos)
      this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.pos + 4)
      this.pos += 8
    }
  }

  /** Int64 from a safe integer (DateTime64 ticks). */
  int64(v: number): void {
    if (v >= 0) {
      this.uint64(v)
      return
    }
    this.ensure(8)
    this.pos = this.buf.writeBigInt64LE(BigInt(v), this.pos)
  }

  varint(v: number): void {
    this.ensure(10)
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80
      v = Math.floor(v / 128)
    }
    this.buf[this.pos++] = v
  }

  string(v: string): void {
    // Most strings here are short: write the bytes after a 1-byte length
    // guess and only move them when the length needs a longer varint.
    const max = v.length * 3
    this.ensure(max + 10)
    if (v.length < 0x80 && this.asciiShort(v)) return
    const start = this.pos + 1
    const len = v.length === 0 ? 0 : this.buf.write(v, start, 'utf8')
    if (len < 0x80) {
      this.buf[this.pos] = len
      this.pos = start + len
      return
    }
    let size = 1
    for (let n = len; n >= 0x80; n = Math.floor(n / 128)) size++
    this.buf.copyWithin(this.pos + size, start, start + len)
    this.varint(len)
    this.pos += len
  }

  /** Short ASCII strings are copied in JS: cheaper than a call into Buffer.write. */
  private asciiShort(v: string): boolean {
    const buf = this.buf
    const start = this.pos + 1
    for (let i = 0; i < v.length; i++) {
      const code = v.charCodeAt(i)
      if (code >= 0x80) return false
      buf[start + i] = code
    }
    buf[this.pos] = v.length
    this.pos = start + v.length
    return true
  }

  bytes(v: Uint8Array): void {
    this.ensure(v.length)
    this.buf.set(v, this.pos)
    this.pos += v.length
  }

  fixed(v: Uint8Array, size: number): void {
    if (v.length !== size) throw new RangeError(`expected ${size} bytes, got ${v.length}`)
    this.bytes(v)
  }

  /** ClickHouse UUID: two UInt64 halves, each little-endian. */
  uuid(v: string): void {
    if (v.length !== 36) throw new RangeError(`not a UUID: ${JSON.stringify(v)}`)
    this.ensure(16)
    const buf = this.buf
    const base = this.pos
    // Byte i of the UUID (big-endian text order) lands at its place in the
    // reversed half it belongs to.
    for (let i = 0, c = 0; i < 16; i++) {
      if (c === 8 || c === 13 || c === 18 || c === 23) c++
      const byte = (hexValue(v.charCodeAt(c)) << 4) | hexValue(v.charCodeAt(c + 1))
      buf[base + (i < 8 ? 7 - i : 23 - i)] = byte
      c += 2
    }
    this.pos += 16
  }

  stringArray(values: readonly string[]): void {
    this.varint(values.length)
    for (const v of values) this.string(v)
  }

  /** Nullable(String): a 1 byte null flag, then the value when present. */
  nullableString(v: string | null): void {
    if (v === null) this.uint8(1)
    else {
      this.uint8(0)
      this.string(v)
    }
  }

  /** Nullable(FixedString(n)) and Nullable(IPv6): flag, then the bytes. */
  nullableFixed(v: Uint8Array | null, size: number): void {
    if (v === null) this.uint8(1)
    else {
      this.uint8(0)
      this.fixed(v, size)
    }
  }
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 97 && code <= 102) return code - 87
  if (code >= 65 && code <= 70) return code - 55
  throw new RangeError('not a hexadecimal digit in UUID')
}
