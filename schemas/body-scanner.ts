import type avro from 'avsc'
import { MAX_RECORD_DEPTH, type DecodeBound } from './decode-bounds.js'
import { SchemaError } from './errors.js'

/**
 * Walks an Avro binary body against its writer schema without building a
 * value, so that avsc's decoder only ever sees bytes whose every count and
 * length fits. The body is attacker-controlled: avsc allocates an array of
 * the count a block declares before reading an item (`new Array(n)`), and
 * reads items past the end of the buffer until that count is spent, so a
 * 185-byte message declaring 2^31 record ids costs gigabytes and minutes.
 * Here every count and length is checked against the bytes left and the
 * field's bound before anything is skipped; the scan allocates nothing and
 * costs one pass over the body.
 */
export interface BodyScanner {
  /** Throws SchemaError MESSAGE_MALFORMED naming the field and the bound it broke. */
  scan(body: Buffer): void
}

interface Cursor {
  buf: Buffer
  pos: number
  depth: number
}

type Scan = (c: Cursor) => void

const INT_MIN = -(2 ** 31)
const INT_MAX = 2 ** 31 - 1
/** avsc refuses longs beyond 2^53 - 1 (precision loss); so does the scan. */
const LONG_LIMIT = Number.MAX_SAFE_INTEGER
const MAX_VARINT_BYTES = 10

const NO_BOUND: DecodeBound = Object.freeze({})

function malformed(field: string, problem: string, details: Record<string, unknown> = {}): SchemaError {
  return new SchemaError('MESSAGE_MALFORMED', `${field || '(event)'}: ${problem}`, { details: { field: field || '(event)', ...details } })
}

/** Zigzag varint as a Number; beyond 2^53 it is approximate, which only ever matters for values refused as too large. */
function readVarint(c: Cursor, field: string): number {
  const { buf } = c
  let raw = 0
  let scale = 1
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (c.pos >= buf.length) throw malformed(field, 'the body ends inside a number')
    const b = buf[c.pos++]!
    raw += (b & 0x7f) * scale
    if ((b & 0x80) === 0) return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2
    scale *= 128
  }
  throw malformed(field, `a number longer than ${MAX_VARINT_BYTES} bytes`)
}

function skipBytes(c: Cursor, n: number, field: string, what: string): void {
  const left = c.buf.length - c.pos
  if (n > left) throw malformed(field, `${what} of ${n} bytes cannot fit in the ${left} bytes left`, { declared: n, left })
  c.pos += n
}

/** The fewest bytes a value of this type encodes to; Infinity when only an endless recursion would do. */
export function minEncodedBytes(type: avro.Type, visiting: Set<avro.Type> = new Set()): number {
  if (visiting.has(type)) return Infinity
  switch (type.typeName) {
    case 'null':
      return 0
    case 'float':
      return 4
    case 'double':
      return 8
    case 'fixed':
      return (type as avro.types.FixedType).size
    case 'record':
    case 'error': {
      visiting.add(type)
      let sum = 0
      for (const field of (type as avro.types.RecordType).fields) sum += minEncodedBytes(field.type, visiting)
      visiting.delete(type)
      return sum
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      visiting.add(type)
      const branches = (type as avro.types.UnwrappedUnionType).types.map((t) => minEncodedBytes(t, visiting))
      visiting.delete(type)
      return 1 + Math.min(...branches)
    }
    default:
      if (type.typeName.startsWith('logical:')) return minEncodedBytes((type as avro.types.LogicalType).underlyingType, visiting)
      // boolean, int, long, enum, string, bytes, and an array or map (an empty one is its 0 terminator).
      return 1
  }
}

/**
 * Compiles the scan of a writer schema once; `fieldBounds` bounds the top
 * record's fields by name (a nested record's, such as a batch's events, come
 * from its field's `fields` bound). A field with no bound (a field of a future
 * version nobody named) is still bounded by the bytes of the message.
 */
export function createBodyScanner(type: avro.Type, fieldBounds: Readonly<Record<string, DecodeBound>>): BodyScanner {
  const records = new Map<avro.Type, Scan>()

  function compile(t: avro.Type, bound: DecodeBound, field: string, top: boolean): Scan {
    switch (t.typeName) {
      case 'null':
        return () => {}
      case 'boolean':
        return (c) => {
          if (c.pos >= c.buf.length) throw malformed(field, 'the body ends before a boolean')
          const b = c.buf[c.pos++]!
          if (b > 1) throw malformed(field, `a boolean byte of ${b} (Avro writes 0 or 1)`)
        }
      case 'int':
        return (c) => {
          const n = readVarint(c, field)
          if (n < INT_MIN || n > INT_MAX) throw malformed(field, `${n} is outside the Avro int range`, { found: n })
        }
      case 'long':
        return (c) => {
          const n = readVarint(c, field)
          if (Math.abs(n) > LONG_LIMIT) throw malformed(field, `a long beyond 2^53 cannot be read without precision loss`)
        }
      case 'abstract:long':
        return (c) => void readVarint(c, field)
      case 'float':
        return (c) => skipBytes(c, 4, field, 'a float')
      case 'double':
        return (c) => skipBytes(c, 8, field, 'a double')
      case 'fixed': {
        const size = (t as avro.types.FixedType).size
        return (c) => skipBytes(c, size, field, 'a fixed value')
      }
      case 'string':
        return compileLength(bound.maxBytes ?? Infinity, field, 'a string')
      case 'bytes':
        return compileLength(bound.maxBytes ?? Infinity, field, 'a bytes value')
      case 'enum': {
        const symbols = (t as avro.types.EnumType).symbols.length
        return (c) => {
          const i = readVarint(c, field)
          if (i < 0 || i >= symbols) throw malformed(field, `enum index ${i} is not one of the ${symbols} symbols`, { found: i })
        }
      }
      case 'union:unwrapped':
      case 'union:wrapped': {
        const branches = (t as avro.types.UnwrappedUnionType).types.map((b) => compile(b, bound, field, false))
        return (c) => {
          const i = readVarint(c, field)
          const branch = branches[i]
          if (branch === undefined) throw malformed(field, `union branch ${i} is not one of the ${branches.length} branches`, { found: i })
          branch(c)
        }
      }
      case 'array':
        return compileBlocks((t as avro.types.ArrayType).itemsType, null, bound, field)
      case 'map':
        return compileBlocks((t as avro.types.MapType).valuesType as avro.Type, compileLength(Infinity, `${field}{}`, 'a map key'), bound, field)
      case 'record':
      case 'error':
        return compileRecord(t as avro.types.RecordType, field, top ? fieldBounds : bound.fields)
      default:
        if (t.typeName.startsWith('logical:')) return compile((t as avro.types.LogicalType).underlyingType, bound, field, top)
        // A type the scan does not know cannot be bounded: refuse to trust it at start-up, not per message.
        throw new Error(`the bounded scan does not know Avro type ${t.typeName} (field ${field})`)
    }
  }

  /** A string, bytes value or map key: a length, then that many bytes. */
  function compileLength(maxBytes: number, field: string, what: string): Scan {
    return (c) => {
      const n = readVarint(c, field)
      if (n < 0) throw malformed(field, `${what} of negative length ${n}`, { declared: n })
      if (n > maxBytes) throw malformed(field, `${what} of ${n} bytes is longer than the ${maxBytes} allowed`, { declared: n, limit: maxBytes })
      skipBytes(c, n, field, what)
    }
  }

  /**
   * Arrays and maps are blocks: a count, then that many items, until a 0
   * count. A negative count -n means n items preceded by the block's size in
   * bytes (so a reader may skip the block): that size must fit and match.
   */
  function compileBlocks(itemType: avro.Type, key: Scan | null, bound: DecodeBound, field: string): Scan {
    const item = compile(itemType, bound.items ?? NO_BOUND, `${field}[]`, false)
    // Items that encode to nothing (null, an empty record) would let a
    // 3-byte block declare 2^60 of them: every item is charged one byte.
    const perItem = Math.max(1, minEncodedBytes(itemType) + (key ? 1 : 0))
    const maxItems = bound.maxItems ?? Infinity
    return (c) => {
      let total = 0
      for (;;) {
        let n = readVarint(c, field)
        if (n === 0) return
        let size = -1
        if (n < 0) {
          n = -n
          size = readVarint(c, field)
          const left = c.buf.length - c.pos
          if (size < 0 || size > left) throw malformed(field, `a block of ${size} bytes cannot fit in the ${left} bytes left`, { declared: size, left })
        }
        const start = c.pos
        const left = c.buf.length - c.pos
        if (n * perItem > left) {
          throw malformed(field, `a block of ${n} items cannot fit in the ${left} bytes left`, { declared: n, left })
        }
        total += n
        if (total > maxItems) throw malformed(field, `${total} items, above the ${maxItems} allowed`, { declared: total, limit: maxItems })
        for (let i = 0; i < n; i++) {
          key?.(c)
          item(c)
        }
        // avsc skips a sized block by its size and reads it by its items: both must agree.
        if (size !== -1 && c.pos - start !== size) throw malformed(field, `a block declared ${size} bytes but its items took ${c.pos - start}`)
      }
    }
  }

  function compileRecord(t: avro.types.RecordType, field: string, bounds: Readonly<Record<string, DecodeBound>> | undefined): Scan {
    const known = records.get(t)
    if (known) return known
    let fields: Scan[] = []
    const scan: Scan = (c) => {
      if (++c.depth > MAX_RECORD_DEPTH) throw malformed(field, `records nested deeper than ${MAX_RECORD_DEPTH}`)
      for (const f of fields) f(c)
      c.depth--
    }
    // Registered before its fields compile: a recursive schema refers back to it.
    records.set(t, scan)
    fields = t.fields.map((f) => {
      const path = field ? `${field}.${f.name}` : f.name
      return compile(f.type, bounds?.[f.name] ?? NO_BOUND, path, false)
    })
    return scan
  }

  const root = compile(type, NO_BOUND, '', true)
  return Object.freeze({
    scan(body: Buffer): void {
      const c: Cursor = { buf: body, pos: 0, depth: 0 }
      root(c)
      if (c.pos !== body.length) {
        throw malformed('', `${body.length - c.pos} bytes of trailing data after the event`, { trailing: body.length - c.pos })
      }
    },
  })
}
