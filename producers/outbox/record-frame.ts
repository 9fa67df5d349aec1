import zlib from 'node:zlib'

/**
 * One outbox record on disk (all integers big-endian):
 *
 *   offset  bytes  field
 *   0       3      magic "RTO"
 *   3       1      format version (1)
 *   4       4      payload length (u32)
 *   8       4      CRC-32 of the payload (u32)
 *   12      n      payload: key marker 0x00 (null key)
 *                           or 0x01, key length (u32), key bytes;
 *                           then the value (the rest of the payload)
 *
 * The key marker sits inside the checksummed payload, so a flipped bit
 * cannot turn a null key into an empty one unnoticed. The magic makes a
 * record start recognisable when scanning past damage.
 */
export const FRAME_HEADER_BYTES = 12
export const FRAME_VERSION = 1
const MAGIC = Buffer.from('RTO', 'latin1')
const KEY_NULL = 0x00
const KEY_PRESENT = 0x01

/** Most bytes a frame adds around its key and value (header, marker, key length). */
export const FRAME_OVERHEAD_MAX = FRAME_HEADER_BYTES + 5

/**
 * Largest payload a header may claim. A header claiming more is damage, not
 * a record cut short by a crash: no append could have written it (a Buffer
 * cannot be that large).
 */
export const MAX_PAYLOAD_BYTES = 0x7fff_ffff

// zlib.crc32 arrived in Node 20.15; a named import would fail at link time
// on an older runtime with an obscure message, so check and say which.
if (typeof zlib.crc32 !== 'function') {
  throw new Error(`the readtrail outbox needs zlib.crc32 (Node >= 20.15); this is Node ${process.versions.node}`)
}
const crc32 = zlib.crc32

export interface FrameMessage {
  key: Uint8Array | null
  value: Uint8Array
}

/** Bytes `message` takes on disk once framed. */
export function frameLength(message: FrameMessage): number {
  return FRAME_HEADER_BYTES + 1 + (message.key === null ? 0 : 4 + message.key.length) + message.value.length
}

/** Writes `message` framed into `target` at `offset`; returns where the frame ends. */
export function writeFrame(target: Buffer, offset: number, message: FrameMessage): number {
  const payloadStart = offset + FRAME_HEADER_BYTES
  let at = payloadStart
  if (message.key === null) {
    target[at++] = KEY_NULL
  } else {
    target[at++] = KEY_PRESENT
    at = target.writeUInt32BE(message.key.length, at)
    target.set(message.key, at)
    at += message.key.length
  }
  target.set(message.value, at)
  at += message.value.length
  const payloadLength = at - payloadStart
  if (payloadLength > MAX_PAYLOAD_BYTES) throw new RangeError(`an outbox record payload is at most ${MAX_PAYLOAD_BYTES} bytes (got ${payloadLength})`)
  MAGIC.copy(target, offset)
  target[offset + 3] = FRAME_VERSION
  target.writeUInt32BE(payloadLength, offset + 4)
  target.writeUInt32BE(crc32(target.subarray(payloadStart, at)), offset + 8)
  return at
}

/** The messages framed back to back in one buffer, with each frame's length. */
export function encodeFrames(messages: readonly FrameMessage[]): { bytes: Buffer; lengths: number[] } {
  const lengths = messages.map(frameLength)
  const bytes = Buffer.allocUnsafe(lengths.reduce((a, b) => a + b, 0))
  let at = 0
  for (const message of messages) at = writeFrame(bytes, at, message)
  return { bytes, lengths }
}

export type FrameRead =
  /** A whole record whose checksum matches; key and value share `buf`'s memory. */
  | { status: 'ok'; key: Buffer | null; value: Buffer; end: number }
  /** The bytes end before the header or the payload it announces does. */
  | { status: 'incomplete'; problem: string }
  /** Not a record: wrong magic or version, impossible length, checksum mismatch, malformed payload. */
  | { status: 'bad'; problem: string }

/**
 * Parses the frame starting at `offset`. The bytes come from disk and are
 * not trusted: every length is checked against what is there before use.
 */
export function readFrame(buf: Buffer, offset: number): FrameRead {
  const available = buf.length - offset
  const magicSeen = Math.min(available, MAGIC.length)
  if (buf.compare(MAGIC, 0, magicSeen, offset, offset + magicSeen) !== 0) return { status: 'bad', problem: 'no record magic' }
  if (available < FRAME_HEADER_BYTES) return { status: 'incomplete', problem: `header cut short (${available} of ${FRAME_HEADER_BYTES} bytes)` }
  const version = buf[offset + 3]
  if (version !== FRAME_VERSION) return { status: 'bad', problem: `unknown record version ${version}` }
  const length = buf.readUInt32BE(offset + 4)
  if (length < 1 || length > MAX_PAYLOAD_BYTES) return { status: 'bad', problem: `payload length ${length} out of range` }
  const start = offset + FRAME_HEADER_BYTES
  const end = start + length
  if (end > buf.length) return { status: 'incomplete', problem: `payload cut short (${buf.length - start} of ${length} bytes)` }
  const payload = buf.subarray(start, end)
  if (crc32(payload) !== buf.readUInt32BE(offset + 8)) return { status: 'bad', problem: 'checksum mismatch' }
  const marker = payload[0]
  if (marker === KEY_NULL) return { status: 'ok', key: null, value: payload.subarray(1), end }
  if (marker !== KEY_PRESENT) return { status: 'bad', problem: `unknown key marker ${marker}` }
  if (length < 5) return { status: 'bad', problem: 'key length cut short' }
  const keyLength = payload.readUInt32BE(1)
  if (5 + keyLength > length) return { status: 'bad', problem: `key length ${keyLength} beyond the payload` }
  return { status: 'ok', key: payload.subarray(5, 5 + keyLength), value: payload.subarray(5 + keyLength), end }
}

/**
 * Counts the whole, checksum-valid records found anywhere in `buf` from
 * `from` on, resynchronising on the magic. Used after damage, to tell a
 * crash's torn tail (nothing valid follows) from corruption with records
 * after it. A false match needs the magic, a plausible length and a matching
 * CRC-32 by chance.
 */
export function countFramesAfter(buf: Buffer, from: number): number {
  let count = 0
  let at = buf.indexOf(MAGIC, from)
  while (at >= 0) {
    const frame = readFrame(buf, at)
    if (frame.status === 'ok') {
      count += 1
      at = buf.indexOf(MAGIC, frame.end)
    } else {
      at = buf.indexOf(MAGIC, at + 1)
    }
  }
  return count
}
