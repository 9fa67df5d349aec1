/** A value of a flat JSON object: strings as their exact bytes, numbers as their text. */
export type JsonScalar = { kind: 'string'; bytes: Buffer } | { kind: 'number'; text: string } | { kind: 'literal'; value: boolean | null }

const WS = new Set([0x20, 0x09, 0x0a, 0x0d])
const ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 }

/**
 * Parses one flat JSON object (PostgreSQL's jsonlog line: string, number,
 * boolean and null values, no nesting) from bytes, or returns undefined if
 * it is anything else: nesting, a duplicate key (which of two would a
 * reader believe?), more than `maxKeys` keys, trailing bytes, bad escapes.
 * Strings stay bytes: PostgreSQL copies a non-UTF-8 statement into the JSON
 * unchanged, and JSON.parse would replace what the digest must cover.
 */
export function parseFlatJsonObject(input: Buffer, maxKeys: number): Map<string, JsonScalar> | undefined {
  const out = new Map<string, JsonScalar>()
  let i = skipWs(input, 0)
  if (input[i] !== 0x7b) return undefined
  i = skipWs(input, i + 1)
  if (input[i] === 0x7d) return skipWs(input, i + 1) === input.length ? out : undefined
  for (;;) {
    if (input[i] !== 0x22) return undefined
    const key = readString(input, i)
    if (!key) return undefined
    const name = key.bytes.toString('utf8')
    if (out.has(name) || out.size >= maxKeys) return undefined
    i = skipWs(input, key.end)
    if (input[i] !== 0x3a) return undefined
    i = skipWs(input, i + 1)
    const c = input[i]
    if (c === 0x22) {
      const value = readString(input, i)
      if (!value) return undefined
      out.set(name, { kind: 'string', bytes: value.bytes })
      i = value.end
    } else if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) {
      let j = i + 1
      while (j < input.length && /[0-9eE+\-.]/.test(String.fromCharCode(input[j]!))) j++
      const text = input.toString('latin1', i, j)
      if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text)) return undefined
      out.set(name, { kind: 'number', text })
      i = j
    } else {
      const rest = input.toString('latin1', i, i + 5)
      const literal = rest.startsWith('true') ? true : rest.startsWith('false') ? false : rest.startsWith('null') ? null : undefined
      if (literal === undefined) return undefined
      out.set(name, { kind: 'literal', value: literal })
      i += literal === null || literal ? 4 : 5
    }
    i = skipWs(input, i)
    if (input[i] === 0x2c) {
      i = skipWs(input, i + 1)
      continue
    }
    if (input[i] === 0x7d) return skipWs(input, i + 1) === input.length ? out : undefined
    return undefined
  }
}

function skipWs(input: Buffer, i: number): number {
  while (i < input.length && WS.has(input[i]!)) i++
  return i
}

/** The string starting at the quote at `start`: its unescaped bytes and the index after its closing quote. */
function readString(input: Buffer, start: number): { bytes: Buffer; end: number } | undefined {
  const parts: Buffer[] = []
  let from = start + 1
  let i = from
  for (;;) {
    if (i >= input.length) return undefined
    const c = input[i]!
    if (c === 0x22) {
      parts.push(input.subarray(from, i))
      return { bytes: parts.length === 1 ? parts[0]! : Buffer.concat(parts), end: i + 1 }
    }
    if (c < 0x20) return undefined
    if (c !== 0x5c) {
      i++
      continue
    }
    parts.push(input.subarray(from, i))
    const e = input[i + 1]
    if (e === undefined) return undefined
    if (e === 0x75) {
      const unit = hex4(input, i + 2)
      if (unit === undefined) return undefined
      let codePoint = unit
      let next = i + 6
      if (unit >= 0xd800 && unit <= 0xdbff && input[next] === 0x5c && input[next + 1] === 0x75) {
        const low = hex4(input, next + 2)
        if (low !== undefined && low >= 0xdc00 && low <= 0xdfff) {
          codePoint = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
          next += 6
        }
      }
      // A lone surrogate has no UTF-8 form; PostgreSQL never writes one.
      if (codePoint >= 0xd800 && codePoint <= 0xdfff) return undefined
      parts.push(Buffer.from(String.fromCodePoint(codePoint), 'utf8'))
      i = next
    } else {
      const byte = ESCAPES[e]
      if (byte === undefined) return undefined
      parts.push(Buffer.of(byte))
      i += 2
    }
    from = i
  }
}

function hex4(input: Buffer, at: number): number | undefined {
  const text = input.toString('latin1', at, at + 4)
  return /^[0-9a-fA-F]{4}$/.test(text) ? parseInt(text, 16) : undefined
}
