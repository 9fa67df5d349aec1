import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { openOutbox, type Outbox, type OutboxMessage } from '../../producers/outbox/index.js'
import { FRAME_HEADER_BYTES, frameLength } from '../../producers/outbox/record-frame.js'

/** Collects pino records so a test can see what was warned or logged as an error. */
function capturingLogger() {
  const records: { level: number; msg: string; err?: { code?: string }; [k: string]: unknown }[] = []
  const logger = createLogger({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as (typeof records)[number]) })
  return { logger, records }
}

/** A ~300-byte message whose bytes name its number, so a wrong or reordered read shows. */
function message(n: number, key: 'null' | 'key' = n % 3 === 0 ? 'null' : 'key'): OutboxMessage {
  return { key: key === 'null' ? null : Buffer.from(`key-${n}`), value: Buffer.from(`value ${n} `.padEnd(300, '~')) }
}

function messages(from: number, count: number): OutboxMessage[] {
  return Array.from({ length: count }, (_, i) => message(from + i))
}

const segmentFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.seg')).sort()

describe('outbox', () => {
  const dirs: string[] = []
  const opened: Outbox[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-outbox-'))
    dirs.push(d)
    return d
  }
  const quiet = createLogger({ level: 'silent' })
  const openIn = async (dir: string, options: { maxBytes?: number; segmentBytes?: number } = {}, logger = quiet) => {
    const outbox = await openOutbox({ dir, ...options }, { logger })
    opened.push(outbox)
    return outbox
  }
  afterEach(async () => {
    vi.restoreAllMocks()
    for (const outbox of opened.splice(0)) await outbox.close()
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }))
  })

  it('appends with consecutive positions, reads them back in order and acknowledges', async () => {
    const outbox = await openIn(fresh())
    expect([outbox.cursor(), outbox.end()]).toEqual([1n, 1n])
    // Concurrent appends keep the order in which they were called.
    const ranges = await Promise.all([outbox.append(messages(1, 3)), outbox.append(messages(4, 1)), outbox.append(messages(5, 4))])
    expect(ranges).toEqual([
      { first: 1n, last: 3n },
      { first: 4n, last: 4n },
      { first: 5n, last: 8n },
    ])
    expect(outbox.end()).toBe(9n)
    const all = await outbox.read(1n, 100, 1 << 20)
    expect(all.map((m) => m.position)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n])
    all.forEach((m, i) => {
      expect(m.key).toEqual(message(i + 1).key)
      expect(m.value).toEqual(message(i + 1).value)
    })
    expect(outbox.stats()).toEqual({ pendingMessages: 8, pendingBytes: messages(1, 8).map(frameLength).reduce((a, b) => a + b), segments: 1, lostMessages: 0 })

    // Limits: by count, and by key+value bytes after the first message.
    expect((await outbox.read(3n, 2, 1 << 20)).map((m) => m.position)).toEqual([3n, 4n])
    expect((await outbox.read(3n, 100, 1)).map((m) => m.position)).toEqual([3n])
    expect((await outbox.read(3n, 100, 2 * 307)).map((m) => m.position)).toEqual([3n, 4n])
    expect(await outbox.read(9n, 100, 1 << 20)).toEqual([])

    await outbox.acknowledge(3n)
    expect(outbox.cursor()).toBe(4n)
    expect(outbox.stats().pendingMessages).toBe(5)
    // A read from before the cursor starts at the cursor.
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.position)).toEqual([4n, 5n, 6n, 7n, 8n])
    await outbox.acknowledge(2n)
    expect(outbox.cursor()).toBe(4n)
    await expect(outbox.acknowledge(9n)).rejects.toThrow(RangeError)
    await outbox.acknowledge(8n)
    expect(outbox.cursor()).toBe(outbox.end())
    expect(outbox.stats()).toMatchObject({ pendingMessages: 0, pendingBytes: 0 })
    expect(await outbox.append([])).toEqual({ first: 9n, last: 8n })
  })

  it('shares one fsync among appends that wait while another is in flight', async () => {
    const dir = fresh()
    const outbox = await openIn(dir)
    await outbox.append(messages(1, 1))
    const probe = await open(join(dir, 'probe'), 'w')
    const sync = vi.spyOn(Object.getPrototypeOf(probe) as { sync: () => Promise<void> }, 'sync')
    await probe.close()
    const ranges = await Promise.all(Array.from({ length: 200 }, (_, i) => outbox.append(messages(2 + i, 1))))
    expect(ranges.map((r) => r.first)).toEqual(Array.from({ length: 200 }, (_, i) => BigInt(2 + i)))
    expect(sync.mock.calls.length).toBeLessThanOrEqual(3)
  })

  it('reads consistently while appends run', async () => {
    const outbox = await openIn(fresh(), { segmentBytes: 8 * 1024 })
    let writing = true
    const writer = (async () => {
      for (let n = 1; n <= 400; n += 10) await outbox.append(messages(n, 10))
      writing = false
    })()
    let next = 1n
    while (writing || next < outbox.end()) {
      for (const m of await outbox.read(next, 7, 1 << 20)) {
        expect(m.position).toBe(next)
        expect(m.value).toEqual(message(Number(next)).value)
        next += 1n
      }
      await new Promise((r) => setImmediate(r))
    }
    await writer
    expect(next).toBe(401n)
  })

  it('reports a failed write or fsync as OUTBOX_UNAVAILABLE, uses no position and leaves no torn bytes', async () => {
    const dir = fresh()
    const outbox = await openIn(dir)
    await outbox.append(messages(1, 2))
    const path = join(dir, '00000000000000000001.seg')
    const size = statSync(path).size
    const probe = await open(join(dir, 'probe'), 'w')
    const proto = Object.getPrototypeOf(probe) as { write: () => Promise<unknown>; sync: () => Promise<void> }
    await probe.close()
    vi.spyOn(proto, 'write').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }))
    await expect(outbox.append(messages(3, 1))).rejects.toMatchObject({ code: 'OUTBOX_UNAVAILABLE', retriable: true })
    // The write reached the file but its fsync failed: the bytes are cut off again.
    vi.spyOn(proto, 'sync').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }))
    await expect(outbox.append(messages(3, 1))).rejects.toMatchObject({ code: 'OUTBOX_UNAVAILABLE' })
    expect(statSync(path).size).toBe(size)
    expect(outbox.end()).toBe(3n)
    expect(await outbox.append(messages(3, 1))).toEqual({ first: 3n, last: 3n })
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.value)).toEqual(messages(1, 3).map((m) => m.value))
  })

  it('continues positions after reopening, and after every segment was delivered and deleted', async () => {
    const dir = fresh()
    let outbox = await openIn(dir, { segmentBytes: 2048 })
    await outbox.append(messages(1, 10))
    await outbox.close()
    outbox = await openIn(dir, { segmentBytes: 2048 })
    expect([outbox.cursor(), outbox.end()]).toEqual([1n, 11n])
    expect(await outbox.append(messages(11, 2))).toEqual({ first: 11n, last: 12n })
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.value)).toEqual(messages(1, 12).map((m) => m.value))
    await outbox.acknowledge(12n)
    await outbox.close()
    // Everything delivered: the next open deletes the last segment too, and
    // the cursor file alone remembers where positions stopped.
    outbox = await openIn(dir, { segmentBytes: 2048 })
    expect(segmentFiles(dir)).toEqual([])
    expect([outbox.cursor(), outbox.end()]).toEqual([13n, 13n])
    expect(await outbox.append(messages(13, 1))).toEqual({ first: 13n, last: 13n })
    expect(segmentFiles(dir)).toEqual(['00000000000000000013.seg'])
    await outbox.acknowledge(13n)
    await outbox.close()
    // Segment files removed by hand: positions still never go back.
    for (const name of segmentFiles(dir)) rmSync(join(dir, name))
    outbox = await openIn(dir)
    expect(await outbox.append(messages(14, 1))).toEqual({ first: 14n, last: 14n })
  })

  it('rotates segments by size, names them by first position and deletes them once delivered', async () => {
    const dir = fresh()
    const outbox = await openIn(dir, { segmentBytes: 1024 })
    // Three ~320-byte frames fit in 1024 bytes; the fourth starts a new segment.
    for (let n = 1; n <= 10; n++) await outbox.append([message(n)])
    expect(segmentFiles(dir)).toEqual(['00000000000000000001.seg', '00000000000000000004.seg', '00000000000000000007.seg', '00000000000000000010.seg'])
    for (const name of segmentFiles(dir)) expect(statSync(join(dir, name)).size).toBeLessThanOrEqual(1024)
    expect(outbox.stats().segments).toBe(4)
    // A batch bigger than a segment still goes in whole.
    expect(await outbox.append(messages(11, 5))).toEqual({ first: 11n, last: 15n })
    expect(segmentFiles(dir).at(-1)).toBe('00000000000000000011.seg')

    await outbox.acknowledge(5n)
    expect(segmentFiles(dir)).toEqual(['00000000000000000004.seg', '00000000000000000007.seg', '00000000000000000010.seg', '00000000000000000011.seg'])
    expect((await outbox.read(outbox.cursor(), 100, 1 << 20)).map((m) => m.value)).toEqual(messages(6, 10).map((m) => m.value))
    await outbox.acknowledge(15n)
    // Drained: the last segment goes too, so no delivered event stays on disk.
    expect(segmentFiles(dir)).toEqual([])
    expect(outbox.stats()).toMatchObject({ pendingMessages: 0, pendingBytes: 0, segments: 0 })
    // The next append starts a segment named after the next position.
    expect(await outbox.append([message(16)])).toEqual({ first: 16n, last: 16n })
    expect(segmentFiles(dir)).toEqual(['00000000000000000016.seg'])
  })

  it('refuses an append that would pass maxBytes, writing nothing, and accepts it again once delivered', async () => {
    const dir = fresh()
    const frame = frameLength(message(1, 'key'))
    const outbox = await openIn(dir, { maxBytes: 10 * frame + 10, segmentBytes: 4 * frame })
    const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => message(from + i, 'key'))
    await outbox.append(batch(1, 8))
    const before = segmentFiles(dir).map((n) => readFileSync(join(dir, n)))
    const full = await outbox.append(batch(9, 3)).catch((err: unknown) => err)
    expect(full).toMatchObject({ code: 'OUTBOX_FULL', retriable: true })
    expect(segmentFiles(dir).map((n) => readFileSync(join(dir, n)))).toEqual(before)
    expect([outbox.end(), outbox.stats().pendingBytes]).toEqual([9n, 8 * frame])
    // Concurrent appends are counted together: only two of five single ones fit.
    const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => outbox.append(batch(9 + i, 1))))
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected'])
    await outbox.acknowledge(4n)
    expect(await outbox.append(batch(11, 3))).toEqual({ first: 11n, last: 13n })
  })

  it('truncates a torn tail left by a crash mid-write, with a warning', async () => {
    const dir = fresh()
    let outbox = await openIn(dir)
    await outbox.append(messages(1, 5))
    await outbox.close()
    const path = join(dir, '00000000000000000001.seg')
    const clean = readFileSync(path)

    // A partial frame (header and part of a payload), as a killed write leaves it.
    appendFileSync(path, clean.subarray(0, FRAME_HEADER_BYTES + 40))
    const { logger, records } = capturingLogger()
    outbox = await openIn(dir, {}, logger)
    expect(readFileSync(path)).toEqual(clean)
    expect(records.find((r) => r.level === 40 && r.msg.includes('torn'))).toMatchObject({ segment: '00000000000000000001.seg', bytes_dropped: FRAME_HEADER_BYTES + 40 })
    expect(outbox.stats()).toMatchObject({ pendingMessages: 5, lostMessages: 0 })
    expect(await outbox.append(messages(6, 1))).toEqual({ first: 6n, last: 6n })
    await outbox.close()

    // Garbage, and a last record whose checksum fails: both never reported durable.
    appendFileSync(path, Buffer.from('\u0000\u0000garbage that is no record'))
    outbox = await openIn(dir)
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.value)).toEqual(messages(1, 6).map((m) => m.value))
    await outbox.close()
    const bytes = readFileSync(path)
    bytes[bytes.length - 5]! ^= 0xff
    writeFileSync(path, bytes)
    outbox = await openIn(dir)
    expect(outbox.end()).toBe(6n)
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.value)).toEqual(messages(1, 5).map((m) => m.value))
    expect(readdirSync(dir).filter((n) => n.endsWith('.corrupt'))).toEqual([])
  })

  it('sets a segment damaged before its end aside as .corrupt, counts what it lost, and replays the rest', async () => {
    const dir = fresh()
    const frame = frameLength(message(1, 'key'))
    let outbox = await openIn(dir, { segmentBytes: 4 * frame })
    for (let n = 1; n <= 12; n += 4) await outbox.append(Array.from({ length: 4 }, (_, i) => message(n + i, 'key')))
    await outbox.close()
    expect(segmentFiles(dir)).toEqual(['00000000000000000001.seg', '00000000000000000005.seg', '00000000000000000009.seg'])
    const first = join(dir, '00000000000000000001.seg')
    const original = readFileSync(first)
    const damaged = Buffer.from(original)
    damaged[frame + FRAME_HEADER_BYTES + 10]! ^= 0xff // inside record 2's payload
    writeFileSync(first, damaged)

    const { logger, records } = capturingLogger()
    outbox = await openIn(dir, { segmentBytes: 4 * frame }, logger)
    // Record 1 stays deliverable; 2, 3 and 4 are lost; the next segment follows.
    expect(outbox.stats()).toMatchObject({ lostMessages: 3, pendingMessages: 9 })
    expect(readFileSync(`${first}.corrupt`)).toEqual(damaged)
    expect(readFileSync(first)).toEqual(original.subarray(0, frame))
    const error = records.find((r) => r.level === 50)
    expect(error).toMatchObject({ code: 'OUTBOX_CORRUPT', err: { code: 'OUTBOX_CORRUPT' }, lost_messages: 3, kept_as: '00000000000000000001.seg.corrupt' })
    const read = await outbox.read(outbox.cursor(), 100, 1 << 20)
    expect(read.map((m) => m.position)).toEqual([1n, 5n, 6n, 7n, 8n, 9n, 10n, 11n, 12n])
    expect(read.map((m) => m.value)).toEqual([1, 5, 6, 7, 8, 9, 10, 11, 12].map((n) => message(n).value))
    await outbox.acknowledge(1n)
    // The lost positions are not pending: the cursor steps over them.
    expect(outbox.cursor()).toBe(5n)
    await outbox.acknowledge(12n)
    await outbox.close()

    // Reported once; the set-aside file is never deleted.
    const second = capturingLogger()
    outbox = await openIn(dir, {}, second.logger)
    expect(outbox.stats()).toMatchObject({ lostMessages: 0, pendingMessages: 0 })
    expect(second.records.filter((r) => r.level >= 50)).toEqual([])
    expect(readdirSync(dir).filter((n) => n.endsWith('.corrupt'))).toEqual(['00000000000000000001.seg.corrupt'])
    expect(await outbox.append(messages(13, 1))).toEqual({ first: 13n, last: 13n })
  })

  it('never reuses the positions of a corrupt last segment', async () => {
    const dir = fresh()
    let outbox = await openIn(dir)
    await outbox.append(messages(1, 6))
    await outbox.close()
    const path = join(dir, '00000000000000000001.seg')
    const bytes = readFileSync(path)
    bytes[frameLength(message(1)) + FRAME_HEADER_BYTES + 3]! ^= 0xff // record 2; records 3..6 follow intact
    writeFileSync(path, bytes)
    outbox = await openIn(dir)
    expect(outbox.stats()).toMatchObject({ lostMessages: 5, pendingMessages: 1 })
    expect(outbox.end()).toBe(7n)
    expect(await outbox.append(messages(7, 1))).toEqual({ first: 7n, last: 7n })
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.position)).toEqual([1n, 7n])
    await outbox.close()
    // The positions survive another restart even though only the cursor file knows them.
    outbox = await openIn(dir)
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.position)).toEqual([1n, 7n])
    expect(outbox.end()).toBe(8n)
  })

  it('finishes a set-aside that a crash interrupted between its two renames', async () => {
    const dir = fresh()
    let outbox = await openIn(dir)
    await outbox.append(messages(1, 4))
    await outbox.close()
    const path = join(dir, '00000000000000000001.seg')
    const bytes = readFileSync(path)
    const prefix = bytes.subarray(0, frameLength(message(1)))
    writeFileSync(`${path}.corrupt`, bytes)
    writeFileSync(`${path}.recovering`, prefix)
    rmSync(path)
    outbox = await openIn(dir)
    expect(readFileSync(path)).toEqual(prefix)
    expect((await outbox.read(1n, 100, 1 << 20)).map((m) => m.position)).toEqual([1n])
  })

  it('replays from the oldest segment when the cursor file is unreadable', async () => {
    const dir = fresh()
    let outbox = await openIn(dir)
    await outbox.append(messages(1, 4))
    await outbox.acknowledge(2n)
    await outbox.close()
    writeFileSync(join(dir, 'cursor'), '{"version":1,"cursor":"x"')
    const { logger, records } = capturingLogger()
    outbox = await openIn(dir, {}, logger)
    expect(outbox.cursor()).toBe(1n)
    expect(records.find((r) => r.level === 50)).toMatchObject({ code: 'OUTBOX_CORRUPT' })
    expect(readFileSync(join(dir, 'cursor.corrupt'), 'utf8')).toBe('{"version":1,"cursor":"x"')
  })

  it('fails with OUTBOX_UNAVAILABLE when the directory cannot be created', async () => {
    const file = join(fresh(), 'a-file')
    writeFileSync(file, '')
    await expect(openOutbox({ dir: join(file, 'sub') }, { logger: quiet })).rejects.toMatchObject({ code: 'OUTBOX_UNAVAILABLE', retriable: true })
  })

  it('rejects invalid options naming each key', async () => {
    await expect(openOutbox({ dir: '', maxBytes: 10, other: 1 } as never, { logger: quiet })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      details: { issues: expect.arrayContaining([expect.objectContaining({ key: 'dir' }), expect.objectContaining({ key: 'maxBytes' }), expect.objectContaining({ key: 'other' })]) },
    })
  })

  it('refuses appends, reads and acknowledgements after close, but finishes appends in flight', async () => {
    const dir = fresh()
    const outbox = await openOutbox({ dir }, { logger: quiet })
    const inFlight = outbox.append(messages(1, 2))
    await outbox.close()
    expect(await inFlight).toEqual({ first: 1n, last: 2n })
    await expect(outbox.append(messages(3, 1))).rejects.toMatchObject({ code: 'OUTBOX_UNAVAILABLE' })
    await expect(outbox.read(1n, 1, 1)).rejects.toMatchObject({ code: 'OUTBOX_UNAVAILABLE' })
    await expect(outbox.acknowledge(1n)).rejects.toMatchObject({ code: 'OUTBOX_UNAVAILABLE' })
    expect(readdirSync(dir)).not.toContain('lock')
  })
})
