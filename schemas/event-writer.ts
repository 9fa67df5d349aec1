import type avro from 'avsc'

/**
 * The Avro body of one record, byte for byte what avsc's `type.toBuffer(value)`
 * writes, without avsc's cost on the caller's thread: avsc measures every
 * string with the native Buffer.byteLength before writing it, which is most
 * of an event's encoding when it names many short record ids.
 */
export interface EventWriter {
  /**
   * A fresh buffer the caller keeps. Throws TypeError for a value avsc would
   * refuse, RangeError for a record whose body would pass `maxBytes`.
   */
  encode(value: unknown): Buffer
  readonly maxBytes: number
}

export interface EventWriterOptions {
  /** Most bytes one encoded record may take: the scratch buffer never grows past it (plus one varint). */
  maxBytes: number
  /** @default 1024 */
  initialBytes?: number
}

/** The most bytes a zigzag varint of a safe integer takes (2^54 in 7-bit groups). */
const MAX_VARINT_BYTES = 10
/** Above this the scratch is released after use: one large event must not pin megabytes of an application's memory. */
const RETAINED_SCRATCH_BYTES = 64 * 1024
/** avsc's long range (its isSafeLong): ±(2^53 - 2); it refuses ±(2^53 - 1). */
const MAX_AVRO_LONG = 9_007_199_254_740_990
/**
 * Below this many characters a string is written by a JS loop; from it on,
 * one native call costs less than the loop (about 70 ns against 2-3 ns a
 * character on the bench machine). At most 64: the loop's length prefix is
 * one byte, zigzag 2n < 128.
 */
const NATIVE_STRING = 24
/**
 * avsc writes a string of up to this many UTF-8 bytes with its own loop
 * (a lone surrogate as the 3 bytes of its code unit, ED A0 80 for D800)
 * and a longer one with Buffer#utf8Write (a lone surrogate as U+FFFD,
 * EF BF BD). Both are copied here: the bytes must be avsc's.
 */
const AVSC_JS_STRING_BYTES = 64

type Write = (value: unknown) => void

/** The Avro name grammar: what may be spliced into the generated field reads. */
const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Compiles a writer for a record type at start-up, field by field in schema
 * order, from the avsc type itself: the .avsc file stays the one description
 * of the wire. Only the types the access-event schemas use are supported;
 * any other throws here, so a schema change cannot silently encode otherwise
 * than avsc would.
 */
export function createEventWriter(type: avro.Type, options: EventWriterOptions): EventWriter {
  const { maxBytes } = options
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`)
  const initialBytes = Math.min(options.initialBytes ?? 1024, maxBytes + MAX_VARINT_BYTES)
  // A write reserves at most 10 bytes more than it writes (a varint's worst
  // case, or the exact bytes): a scratch that may hold maxBytes + 10 never
  // refuses a record that fits, and the final length check refuses exactly
  // those that do not.
  const scratchLimit = maxBytes + MAX_VARINT_BYTES

  let buf = Buffer.allocUnsafe(initialBytes)
  let pos = 0

  function reserve(bytes: number): void {
    const needed = pos + bytes
    if (needed <= buf.length) return
    if (needed > scratchLimit) throw tooLarge()
    const next = Buffer.allocUnsafe(Math.min(scratchLimit, Math.max(needed, buf.length * 2)))
    buf.copy(next, 0, 0, pos)
    buf = next
  }

  function tooLarge(): RangeError {
    return new RangeError(`the record encodes to more than ${maxBytes} bytes`)
  }

  /** Avro zigzag varint, as avsc's Tap.writeLong: integer arithmetic while it cannot overflow, then float. */
  function writeLong(n: number): void {
    const b = buf
    let p = pos
    if (n >= -1073741824 && n < 1073741824) {
      let m = n >= 0 ? n << 1 : (~n << 1) | 1
      while (m > 0x7f) {
        b[p++] = (m & 0x7f) | 0x80
        m >>>= 7
      }
      b[p++] = m
    } else {
      let f = n >= 0 ? n * 2 : -n * 2 - 1
      // f & 0x7f is ToInt32's modulo 2^32 of an integer below 2^54: its low 7 bits.
      while (f > 0x7f) {
        b[p++] = (f & 0x7f) | 0x80
        f = Math.floor(f / 128)
      }
      b[p++] = f
    }
    pos = p
  }

  /**
   * ASCII is written as avsc would write it without measuring it first: a
   * short string by a JS loop, a longer one by Buffer#write given room for
   * any string of its length, which wrote ASCII if it wrote one byte per
   * character. Anything else is rewritten in place as avsc writes it.
   */
  function writeString(s: string): void {
    const n = s.length
    const start = pos
    if (n < NATIVE_STRING) {
      if (start + 1 + n > buf.length) reserve(1 + n)
      const b = buf
      b[start] = n << 1
      let p = start + 1
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        b[p++] = c
      }
      if (i === n) {
        pos = p
        return
      }
    } else if (start + MAX_VARINT_BYTES + 3 * n <= scratchLimit) {
      reserve(MAX_VARINT_BYTES + 3 * n)
      writeLong(n)
      if (buf.write(s, pos, 3 * n, 'utf8') === n) {
        pos += n
        return
      }
      pos = start
    }
    writeStringAsAvsc(s)
  }

  /** avsc's Tap.writeString, less its stray writes past the string (the next field overwrote them). */
  function writeStringAsAvsc(s: string): void {
    const len = Buffer.byteLength(s)
    reserve(MAX_VARINT_BYTES + len)
    writeLong(len)
    if (len > AVSC_JS_STRING_BYTES) {
      pos += buf.write(s, pos, len, 'utf8')
      return
    }
    const b = buf
    let p = pos
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i)
      if (c < 0x80) {
        b[p++] = c
      } else if (c < 0x800) {
        b[p++] = (c >> 6) | 0xc0
        b[p++] = (c & 0x3f) | 0x80
      } else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c & 0x03ff) << 10) + (s.charCodeAt(i + 1) & 0x03ff)
        i++
        b[p++] = (c >> 18) | 0xf0
        b[p++] = ((c >> 12) & 0x3f) | 0x80
        b[p++] = ((c >> 6) & 0x3f) | 0x80
        b[p++] = (c & 0x3f) | 0x80
      } else {
        b[p++] = (c >> 12) | 0xe0
        b[p++] = ((c >> 6) & 0x3f) | 0x80
        b[p++] = (c & 0x3f) | 0x80
      }
    }
    pos = p
  }

  function compile(t: avro.Type, path: string): Write {
    switch (t.typeName) {
      case 'string':
        return (v) => {
          if (typeof v !== 'string') throw invalid(path, 'a string', v)
          writeString(v)
        }
      case 'int':
        return (v) => {
          // avsc's test: a number that survives |0 unchanged.
          if (v !== ((v as number) | 0)) throw invalid(path, 'a 32-bit integer', v)
          if (pos + 5 > buf.length) reserve(5)
          writeLong(v as number)
        }
      case 'long':
        return (v) => {
          if (typeof v !== 'number' || !Number.isInteger(v) || v > MAX_AVRO_LONG || v < -MAX_AVRO_LONG) throw invalid(path, `an integer within ±${MAX_AVRO_LONG}`, v)
          if (pos + MAX_VARINT_BYTES > buf.length) reserve(MAX_VARINT_BYTES)
          writeLong(v)
        }
      case 'boolean':
        return (v) => {
          if (typeof v !== 'boolean') throw invalid(path, 'a boolean', v)
          if (pos + 1 > buf.length) reserve(1)
          buf[pos++] = v ? 1 : 0
        }
      case 'enum': {
        const symbols = (t as avro.types.EnumType).symbols
        const indices = new Map(symbols.map((s, i) => [s, i]))
        return (v) => {
          const index = typeof v === 'string' ? indices.get(v) : undefined
          if (index === undefined) throw invalid(path, `one of ${symbols.join(', ')}`, v)
          if (pos + MAX_VARINT_BYTES > buf.length) reserve(MAX_VARINT_BYTES)
          writeLong(index)
        }
      }
      case 'fixed': {
        const size = (t as avro.types.FixedType).size
        return (v) => {
          if (!Buffer.isBuffer(v) || v.length !== size) throw invalid(path, `a Buffer of ${size} bytes`, v)
          if (pos + size > buf.length) reserve(size)
          buf.set(v, pos)
          pos += size
        }
      }
      case 'array': {
        const item = compile((t as avro.types.ArrayType).itemsType, `${path}[]`)
        // One block of all the items, then the 0 that ends the array: what avsc writes.
        return (v) => {
          if (!Array.isArray(v)) throw invalid(path, 'an array', v)
          const n = v.length
          if (n > 0) {
            if (pos + MAX_VARINT_BYTES > buf.length) reserve(MAX_VARINT_BYTES)
            writeLong(n)
            for (let i = 0; i < n; i++) item(v[i])
          }
          if (pos + 1 > buf.length) reserve(1)
          buf[pos++] = 0
        }
      }
      case 'union:unwrapped': {
        const branches = (t as avro.types.UnwrappedUnionType).types
        const nullIndex = branches.findIndex((b) => b.typeName === 'null')
        const valueIndex = branches.findIndex((b) => b.typeName !== 'null')
        if (branches.length !== 2 || nullIndex < 0 || valueIndex < 0) throw unsupported(path, t)
        // The branch's own check stands for avsc's choice of branch by the
        // value's kind: each supported branch takes exactly one kind.
        const branch = compile(branches[valueIndex]!, path)
        return (v) => {
          if (pos + 1 > buf.length) reserve(1)
          if (v === null) {
            buf[pos++] = nullIndex << 1
            return
          }
          buf[pos++] = valueIndex << 1
          branch(v)
        }
      }
      default:
        throw unsupported(path, t)
    }
  }

  if (type.typeName !== 'record') throw unsupported('(record)', type)
  const fields = (type as avro.types.RecordType).fields
  const writers: Write[] = []
  const defaults: (() => void)[] = []
  const locals: string[] = []
  const reads = fields.map((field, i) => {
    if (!AVRO_NAME.test(field.name)) throw new Error(`field name ${JSON.stringify(field.name)} is not an Avro name`)
    writers.push(compile(field.type, field.name))
    locals.push(`w${i} = writers[${i}]`)
    const defaultValue: unknown = field.defaultValue()
    if (defaultValue === undefined) return `  w${i}(r.${field.name})`
    // avsc writes a field's default when the value lacks it (is undefined).
    const defaultBytes = field.type.toBuffer(defaultValue)
    defaults[i] = () => {
      reserve(defaultBytes.length)
      pos += defaultBytes.copy(buf, pos)
    }
    locals.push(`d${i} = defaults[${i}]`)
    return `  v = r.${field.name}\n  if (v === undefined) d${i}()\n  else w${i}(v)`
  })
  // One property read per field, each at its own site, as avsc's own record
  // writer does (it too is made with new Function, so this needs nothing avsc
  // did not): read in a loop by a computed name, the fields cost 0.2-0.3 µs
  // of megamorphic lookups per event. Only checked Avro names reach the source.
  const source = `${locals.map((l) => `const ${l}\n`).join('')}return function writeFields(r) {\n  let v\n${reads.join('\n')}\n}`
  const writeFields = new Function('writers', 'defaults', source)(writers, defaults) as (record: object) => void

  function encode(value: unknown): Buffer {
    if (typeof value !== 'object' || value === null) throw invalid('(record)', 'an object', value)
    pos = 0
    try {
      writeFields(value)
      if (pos > maxBytes) throw tooLarge()
      const out = Buffer.allocUnsafe(pos)
      buf.copy(out, 0, 0, pos)
      return out
    } finally {
      if (buf.length > RETAINED_SCRATCH_BYTES) buf = Buffer.allocUnsafe(initialBytes)
    }
  }

  return Object.freeze({ encode, maxBytes })
}

function invalid(path: string, expected: string, value: unknown): TypeError {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value) : value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
  return new TypeError(`${path}: expected ${expected}, got ${shown}`)
}

function unsupported(path: string, t: avro.Type): Error {
  return new Error(`${path}: the event writer does not support Avro ${t.typeName} (${JSON.stringify(t.schema())}); extend schemas/event-writer.ts and its differential test`)
}
