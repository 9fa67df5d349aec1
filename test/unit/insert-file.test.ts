import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createInsertFiles, quoteStringLiteral, removeStaleInsertDirs } from '../../store/insert-file.js'

describe('insert files for the embedded engine', () => {
  const parents: string[] = []
  const parent = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'readtrail-insert-file-test-'))
    parents.push(dir)
    return dir
  }
  afterEach(() => {
    for (const dir of parents.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  it('hands `use` a 0600 file holding the bytes, in a 0700 directory, and removes the file after', async () => {
    const files = createInsertFiles(parent())
    expect(files.dir).toBeUndefined()
    const bytes = Buffer.from([0, 1, 0xff, 0xfe, 0x0a, 0x27, 0x5c])
    let seen: string | undefined
    const out = await files.withFile(bytes, async (path) => {
      seen = path
      expect(readFileSync(path).equals(bytes)).toBe(true)
      expect(statSync(path).mode & 0o777).toBe(0o600)
      return 'done'
    })
    expect(out).toBe('done')
    expect(existsSync(seen!)).toBe(false)
    expect(statSync(files.dir!).mode & 0o777).toBe(0o700)
    expect(readdirSync(files.dir!)).toEqual([])
  })

  it('removes the file when `use` fails, and passes the failure on', async () => {
    const files = createInsertFiles(parent())
    let seen: string | undefined
    await expect(
      files.withFile(Buffer.from('x'), async (path) => {
        seen = path
        throw new Error('refused')
      }),
    ).rejects.toThrow('refused')
    expect(existsSync(seen!)).toBe(false)
  })

  it('reuses one directory, a new unpredictable file each time, and remove() deletes it', async () => {
    const files = createInsertFiles(parent())
    const paths: string[] = []
    await Promise.all([1, 2, 3].map(() => files.withFile(Buffer.from('x'), async (path) => void paths.push(path))))
    expect(new Set(paths).size).toBe(3)
    expect(new Set(paths.map((p) => join(p, '..'))).size).toBe(1)
    const dir = files.dir!
    files.remove()
    expect(existsSync(dir)).toBe(false)
  })

  it('removes only other processes\' insert directories', async () => {
    const where = parent()
    const files = createInsertFiles(where)
    await files.withFile(Buffer.from('x'), async () => {})
    mkdirSync(join(where, 'readtrail-insert-1-abcdef'))
    mkdirSync(join(where, 'unrelated'))
    removeStaleInsertDirs(where)
    expect(readdirSync(where).sort()).toEqual([files.dir!.slice(where.length + 1), 'unrelated'].sort())
  })

  it('quotes a path as a ClickHouse string literal', () => {
    expect(quoteStringLiteral("/tmp/it's\\here")).toBe("'/tmp/it\\'s\\\\here'")
  })
})
