import { countFramesAfter, readFrame } from './record-frame.js'

/**
 * One segment file as the outbox knows it: the durable records in it, and
 * where each starts. Record `i` has position `first + i`; its frame runs from
 * `offsets[i]` to `offsets[i + 1]` (or `size` for the last one). Only bytes
 * below `size` were fsync'd and reported durable.
 */
export interface Segment {
  readonly first: bigint
  readonly path: string
  readonly offsets: number[]
  size: number
}

const SEGMENT_NAME = /^(\d{20})\.seg$/

/** File name of the segment whose first record has position `first`: sorting names sorts positions. */
export function segmentFileName(first: bigint): string {
  return `${first.toString().padStart(20, '0')}.seg`
}

/** The first position a segment file name stands for, or undefined for any other file. */
export function parseSegmentFileName(name: string): bigint | undefined {
  const match = SEGMENT_NAME.exec(name)
  return match ? BigInt(match[1]!) : undefined
}

/** Position after the segment's last durable record. */
export function segmentEnd(segment: Segment): bigint {
  return segment.first + BigInt(segment.offsets.length)
}

export interface SegmentDamage {
  /** Byte offset of the first record that did not parse. */
  offset: number
  problem: string
  /** Whole valid records found past the damage by scanning for the magic. */
  framesAfter: number
}

export interface SegmentScan {
  /** Start of each valid record before any damage. */
  offsets: number[]
  /** Bytes up to the end of the last valid record. */
  validBytes: number
  damage: SegmentDamage | undefined
}

/** Walks a segment's bytes record by record, stopping at the first that does not parse. */
export function scanSegment(bytes: Buffer): SegmentScan {
  const offsets: number[] = []
  let at = 0
  while (at < bytes.length) {
    const frame = readFrame(bytes, at)
    if (frame.status !== 'ok') {
      return { offsets, validBytes: at, damage: { offset: at, problem: frame.problem, framesAfter: countFramesAfter(bytes, at + 1) } }
    }
    offsets.push(at)
    at = frame.end
  }
  return { offsets, validBytes: at, damage: undefined }
}
