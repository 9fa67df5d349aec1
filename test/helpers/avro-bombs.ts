import avro from 'avsc'
import type { AccessEvent } from '../../schemas/access-event.js'
import type { Codec } from '../../schemas/codec.js'
import { HEADER_LENGTH } from '../../schemas/codec.js'

/** Avro's zigzag varint of any 64-bit value (or beyond, for over-long numbers). */
export function zigzagVarint(n: bigint): Buffer {
  let raw = n >= 0n ? n * 2n : -n * 2n - 1n
  const out: number[] = []
  do {
    const low = Number(raw & 0x7fn)
    raw >>= 7n
    out.push(raw > 0n ? low | 0x80 : low)
  } while (raw > 0n)
  return Buffer.from(out)
}

/** Bytes of the event's encoding before field `index` (avsc encodes a record as its fields in order). */
function prefixBytes(type: avro.Type, event: AccessEvent, index: number): number {
  const fields = (type.schema() as { fields: unknown[] }).fields.slice(0, index)
  return avro.Type.forSchema({ type: 'record', name: 'Prefix', fields } as avro.Schema).toBuffer(event).length
}

/**
 * The message of `event` with field `field`'s encoding replaced by `bytes`:
 * the way an attacker forges one count or length inside an otherwise valid
 * message of the writer schema `type`.
 */
export function spliceField(codec: Codec, type: avro.Type, event: AccessEvent, field: keyof AccessEvent, bytes: Buffer): Buffer {
  const message = codec.encode(event)
  const index = (type.schema() as { fields: { name: string }[] }).fields.findIndex((f) => f.name === field)
  if (index < 0) throw new Error(`no field ${field} in the schema`)
  const start = HEADER_LENGTH + prefixBytes(type, event, index)
  const end = HEADER_LENGTH + prefixBytes(type, event, index + 1)
  return Buffer.concat([message.subarray(0, start), bytes, message.subarray(end)])
}

/**
 * The count bomb of issue 11: `event` (written with no record ids) whose
 * record_ids array declares `count` items and holds none; the fields after
 * it are what avsc would read as the first items.
 */
export function recordIdsCountBomb(codec: Codec, type: avro.Type, event: AccessEvent, count: bigint): Buffer {
  return spliceField(codec, type, { ...event, record_ids: [] }, 'record_ids', zigzagVarint(count))
}
