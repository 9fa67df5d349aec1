import { randomFillSync } from 'node:crypto'

// Random bytes are drawn from the CSPRNG in 8 KiB batches: one call per
// ~800 ids instead of one per id (uuidv7 runs twice per recorded read).
const POOL_SIZE = 8192
const pool = Buffer.allocUnsafe(POOL_SIZE)
let poolOffset = POOL_SIZE

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, 74 random bits. Event
 * ids sort by creation time, which keeps ClickHouse parts and investigations
 * in time order without a second column.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (poolOffset + 10 > POOL_SIZE) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const r = poolOffset
  poolOffset += 10
  const hi = Math.floor(nowMs / 0x1_0000_0000)
  const lo = nowMs >>> 0
  return (
    HEX[(hi >>> 8) & 0xff]! +
    HEX[hi & 0xff]! +
    HEX[lo >>> 24]! +
    HEX[(lo >>> 16) & 0xff]! +
    '-' +
    HEX[(lo >>> 8) & 0xff]! +
    HEX[lo & 0xff]! +
    '-' +
    HEX[(pool[r]! & 0x0f) | 0x70]! +
    HEX[pool[r + 1]!]! +
    '-' +
    HEX[(pool[r + 2]! & 0x3f) | 0x80]! +
    HEX[pool[r + 3]!]! +
    '-' +
    HEX[pool[r + 4]!]! +
    HEX[pool[r + 5]!]! +
    HEX[pool[r + 6]!]! +
    HEX[pool[r + 7]!]! +
    HEX[pool[r + 8]!]! +
    HEX[pool[r + 9]!]!
  )
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isUuid(value: string): boolean {
  return UUID_RE.test(value)
}
