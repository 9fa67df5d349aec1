import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { openOutbox, type Outbox, type OutboxMessage } from '../../producers/outbox/index.js'
import { thrown } from '../helpers/thrown.js'

const quiet = createLogger({ level: 'silent' })
const modeOf = (path: string) => statSync(path).mode & 0o777
const segmentFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.seg')).sort()

function message(n: number): OutboxMessage {
  return { key: Buffer.from(`key-${n}`), value: Buffer.from(`event ${n} `.padEnd(300, '~')) }
}

/**
 * Issue 11: outbox segments were 0644 and, after the outbox drained, still
 * held 2,219 readable events. The SDK runs inside the host application and
 * must not change its umask, so the modes are passed explicitly.
 */
describe('the outbox keeps events private and does not keep delivered ones', () => {
  const dirs: string[] = []
  const opened: Outbox[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-private-outbox-'))
    dirs.push(d)
    return d
  }
  const openIn = async (dir: string, segmentBytes = 1024) => {
    const outbox = await openOutbox({ dir, segmentBytes }, { logger: quiet })
    opened.push(outbox)
    return outbox
  }
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((o) => o.close().catch(() => {})))
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }))
  })

  it('creates its directory 0700 and every file in it 0600, under the host umask (022 here)', async () => {
    const dir = join(fresh(), 'app', 'outbox')
    const outbox = await openIn(dir)
    for (let n = 1; n <= 4; n++) await outbox.append([message(n)])
    await outbox.acknowledge(1n)
    expect(modeOf(dir)).toBe(0o700)
    expect(modeOf(join(dir, '..'))).toBe(0o700)
    const files = readdirSync(dir)
    expect(files).toEqual(expect.arrayContaining(['lock', 'cursor', ...segmentFiles(dir)]))
    expect(segmentFiles(dir).length).toBeGreaterThan(0)
    for (const name of files) expect([name, modeOf(join(dir, name))]).toEqual([name, 0o600])
  })

  it('refuses an outbox directory others can read, before taking its lock', async () => {
    const dir = join(fresh(), 'outbox')
    mkdirSync(dir)
    chmodSync(dir, 0o755)
    expect(await thrown(openIn(dir))).toMatchObject({ code: 'DIRECTORY_NOT_PRIVATE', retriable: false, message: expect.stringContaining(`chmod 700 ${dir}`) })
    expect(readdirSync(dir)).toEqual([])
  })

  it('deletes the last segment once everything in it is acknowledged, and keeps counting positions after it', async () => {
    const dir = fresh()
    const outbox = await openIn(dir)
    for (let n = 1; n <= 5; n++) await outbox.append([message(n)])
    await outbox.acknowledge(5n)
    expect(segmentFiles(dir)).toEqual([])
    expect(outbox.stats()).toMatchObject({ pendingMessages: 0, segments: 0 })
    expect(await outbox.append([message(6)])).toEqual({ first: 6n, last: 6n })
    expect((await outbox.read(0n, 10, 1 << 20)).map((m) => m.value.toString())).toEqual([message(6).value.toString()])
    await outbox.close()
    // A crash right after the unlink: the cursor file alone still says where positions stopped.
    const again = await openIn(dir)
    expect([again.cursor(), again.end()]).toEqual([6n, 7n])
  })

  it('leaves a segment an append is writing to, and deletes it at close once delivered', async () => {
    const dir = fresh()
    const outbox = await openIn(dir, 64 * 1024)
    await outbox.append([message(1), message(2)])
    // The acknowledgement of 1..2 races the append of 3: the segment both use must stay.
    const [, appended] = await Promise.all([outbox.acknowledge(2n), outbox.append([message(3)])])
    expect(appended).toEqual({ first: 3n, last: 3n })
    expect((await outbox.read(0n, 10, 1 << 20)).map((m) => m.position)).toEqual([3n])
    expect(segmentFiles(dir)).toEqual(['00000000000000000001.seg'])
    await outbox.acknowledge(3n)
    await outbox.append([message(4)])
    await outbox.close()
    // 4 is pending: its segment stays for the next process to replay.
    const reopened = await openIn(dir, 64 * 1024)
    expect((await reopened.read(0n, 10, 1 << 20)).map((m) => m.position)).toEqual([4n])
    await reopened.acknowledge(4n)
    await reopened.close()
    expect(segmentFiles(dir)).toEqual([])
  })
})
