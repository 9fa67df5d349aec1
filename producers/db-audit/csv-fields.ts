const QUOTE = 0x22
const COMMA = 0x2c

/**
 * Splits one CSV record (RFC 4180 as PostgreSQL's csvlog and pgAudit write
 * it: a field is quoted when it holds a quote, comma or newline, and a quote
 * inside is doubled) into its fields' exact bytes, or returns undefined when
 * it is not well-formed CSV (a stray quote, text after a closing quote, more
 * than `maxFields` fields). Bytes, not strings: a field may hold invalid
 * UTF-8, and the statement digest is over the bytes the client sent.
 */
export function splitCsvRecord(record: Buffer, maxFields: number): Buffer[] | undefined {
  const fields: Buffer[] = []
  let i = 0
  for (;;) {
    if (fields.length >= maxFields) return undefined
    if (record[i] === QUOTE) {
      const parts: Buffer[] = []
      let from = i + 1
      for (;;) {
        const q = record.indexOf(QUOTE, from)
        if (q < 0) return undefined
        parts.push(record.subarray(from, q))
        if (record[q + 1] === QUOTE) {
          parts.push(record.subarray(q, q + 1))
          from = q + 2
          continue
        }
        i = q + 1
        break
      }
      fields.push(parts.length === 1 ? parts[0]! : Buffer.concat(parts))
      if (i === record.length) return fields
      if (record[i] !== COMMA) return undefined
      i++
      continue
    }
    const comma = record.indexOf(COMMA, i)
    const end = comma < 0 ? record.length : comma
    const field = record.subarray(i, end)
    if (field.includes(QUOTE)) return undefined
    fields.push(field)
    if (comma < 0) return fields
    i = comma + 1
  }
}
