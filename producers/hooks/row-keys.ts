/**
 * How a primary key value becomes a record id. The same row must give the
 * same id whichever driver read it, so analysts can join reads made through
 * PostgreSQL and MySQL hooks of one application.
 */
export function keyText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value)
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString()
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`
  return JSON.stringify(value)
}

/**
 * A composite key is the JSON array of its parts' texts, so `(1, "2,3")` and
 * `(“1,2”, 3)` never collide. A row whose key has a NULL part (the outer side
 * of a join that found nothing) names no record of this table.
 */
export function compositeKeyText(values: readonly unknown[]): string | undefined {
  if (values.length === 1) return keyText(values[0])
  const parts: string[] = []
  for (const v of values) {
    const t = keyText(v)
    if (t === undefined) return undefined
    parts.push(t)
  }
  return JSON.stringify(parts)
}
