import { describe, expect, it } from 'vitest'
import { countFramesAfter, encodeFrames, FRAME_HEADER_BYTES, frameLength, readFrame, writeFrame } from '../../producers/outbox/record-frame.js'
import { scanSegment } from '../../producers/outbox/segment.js'

const messages = [
  { key: Buffer.from('read-1'), value: Buffer.from('first value') },
  { key: null, value: Buffer.from('null key') },
  { key: Buffer.alloc(0), value: Buffer.from('empty key, not a null one') },
  { key: Buffer.from([0, 1, 2, 255]), value: Buffer.alloc(0) },
  { key: null, value: Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256)) },
]

describe('outbox record frame', () => {
  it('round-trips keys (null, empty, binary) and values byte for byte', () => {
    const { bytes, lengths } = encodeFrames(messages)
    expect(lengths).toEqual(messages.map(frameLength))
    expect(bytes.length).toBe(lengths.reduce((a, b) => a + b, 0))
    let at = 0
    for (const message of messages) {
      const frame = readFrame(bytes, at)
      if (frame.status !== 'ok') throw new Error(frame.problem)
      expect(frame.key === null ? null : Buffer.from(frame.key)).toEqual(message.key)
      expect(Buffer.from(frame.value)).toEqual(message.value)
      at = frame.end
    }
    expect(at).toBe(bytes.length)
  })

  it('reports a flipped bit anywhere in the payload as a checksum mismatch', () => {
    const one = encodeFrames([messages[0]!]).bytes
    for (let i = FRAME_HEADER_BYTES; i < one.length; i++) {
      const copy = Buffer.from(one)
      copy[i]! ^= 0x10
      expect(readFrame(copy, 0)).toEqual({ status: 'bad', problem: 'checksum mismatch' })
    }
    const wrongCrc = Buffer.from(one)
    wrongCrc[8]! ^= 1
    expect(readFrame(wrongCrc, 0)).toMatchObject({ status: 'bad', problem: 'checksum mismatch' })
  })

  it('reports every truncation as incomplete, never as a record', () => {
    const one = encodeFrames([messages[0]!]).bytes
    for (let n = 1; n < one.length; n++) expect(readFrame(one.subarray(0, n), 0).status).toBe('incomplete')
  })

  it('rejects a wrong magic, version or length as bad', () => {
    const one = encodeFrames([messages[1]!]).bytes
    const magic = Buffer.from(one)
    magic[0] = 0
    expect(readFrame(magic, 0)).toMatchObject({ status: 'bad', problem: 'no record magic' })
    expect(readFrame(Buffer.alloc(64), 0)).toMatchObject({ status: 'bad' })
    const version = Buffer.from(one)
    version[3] = 9
    expect(readFrame(version, 0)).toMatchObject({ status: 'bad', problem: 'unknown record version 9' })
    const length = Buffer.from(one)
    length.writeUInt32BE(0xffff_ffff, 4)
    expect(readFrame(length, 0)).toMatchObject({ status: 'bad', problem: expect.stringContaining('out of range') })
  })

  it('writes frames in place at an offset', () => {
    const target = Buffer.alloc(10 + frameLength(messages[0]!))
    expect(writeFrame(target, 10, messages[0]!)).toBe(target.length)
    expect(readFrame(target, 10)).toMatchObject({ status: 'ok', end: target.length })
  })

  it('finds the valid records past damage, so a torn tail can be told from corruption', () => {
    const { bytes, lengths } = encodeFrames(messages)
    const damaged = Buffer.from(bytes)
    damaged[lengths[0]! + FRAME_HEADER_BYTES + 2]! ^= 0xff
    expect(countFramesAfter(damaged, lengths[0]! + 1)).toBe(messages.length - 2)
    const scan = scanSegment(damaged)
    expect(scan.offsets).toEqual([0])
    expect(scan.damage).toMatchObject({ offset: lengths[0], problem: 'checksum mismatch', framesAfter: messages.length - 2 })

    const torn = Buffer.concat([bytes, bytes.subarray(0, 20)])
    expect(scanSegment(torn)).toMatchObject({ validBytes: bytes.length, damage: { framesAfter: 0 } })
    expect(scanSegment(bytes)).toMatchObject({ validBytes: bytes.length, damage: undefined })
  })
})
