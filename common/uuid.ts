import { randomBytes } from 'node:crypto'

/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, 74 random bits. Event
 * ids sort by creation time, which keeps ClickHouse parts and investigations
 * in time order without a second column.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const bytes = randomBytes(16)
  let ms = nowMs
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256
    ms = Math.floor(ms / 256)
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isUuid(value: string): boolean {
  return UUID_RE.test(value)
}
