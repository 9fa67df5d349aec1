import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ReadtrailError } from '../../common/errors.js'
import { assertPrivateDirectories, ensurePrivateDirectory, findOpenDirectories } from '../../common/private-dir.js'
import { thrownBy } from '../helpers/thrown.js'

const modeOf = (path: string) => statSync(path).mode & 0o777

describe('private directories', () => {
  const dirs: string[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-private-'))
    dirs.push(d)
    return d
  }
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('creates a missing directory and its missing parents 0700, whatever the umask', () => {
    const root = fresh()
    const dir = join(root, 'home', 'chdb')
    ensurePrivateDirectory({ dir, holds: 'the embedded store' })
    expect(modeOf(join(root, 'home'))).toBe(0o700)
    expect(modeOf(dir)).toBe(0o700)
  })

  it('accepts an existing 0700 directory and leaves what is in it alone', () => {
    const dir = fresh()
    writeFileSync(join(dir, 'kept'), 'x')
    expect(() => ensurePrivateDirectory({ dir, holds: 'x' })).not.toThrow()
  })

  it.each([0o755, 0o750, 0o705, 0o701, 0o710, 0o720, 0o702, 0o770, 0o777, 0o1777])('refuses an existing directory of mode %s, naming the chmod that fixes it', (mode) => {
    const dir = join(fresh(), 'chdb')
    mkdirSync(dir)
    chmodSync(dir, mode)
    const err = thrownBy(ReadtrailError, () => ensurePrivateDirectory({ dir, holds: 'the embedded store' }))
    expect(err).toMatchObject({ code: 'DIRECTORY_NOT_PRIVATE', retriable: false, details: { directories: [{ dir, mode: mode.toString(8), holds: 'the embedded store' }] } })
    expect(err.message).toContain(`run chmod 700 ${dir}`)
    // Refusing changes nothing: the operator decides (the directory may have been shared on purpose).
    expect(statSync(dir).mode & 0o7777).toBe(mode)
  })

  it('lists every open directory in one error, each once with all it holds, and the settings that move them', () => {
    const home = fresh()
    const chdb = join(home, 'chdb')
    mkdirSync(chdb)
    chmodSync(home, 0o755)
    chmodSync(chdb, 0o755)
    const err = thrownBy(ReadtrailError, () =>
      assertPrivateDirectories([
        { dir: chdb, holds: 'the embedded store', setting: 'READTRAIL_DATA_DIR' },
        { dir: home, holds: 'the checkpoint log', setting: 'READTRAIL_CHECKPOINT_LOG' },
        { dir: join(home, 'keys'), holds: 'the checkpoint signing key' },
        { dir: home, holds: 'the verify state', setting: 'READTRAIL_VERIFY_STATE' },
      ]),
    )
    expect(err.code).toBe('DIRECTORY_NOT_PRIVATE')
    expect(err.details?.['directories']).toEqual([
      { dir: chdb, mode: '755', holds: 'the embedded store' },
      { dir: home, mode: '755', holds: 'the checkpoint log, the verify state' },
    ])
    expect(err.message).toContain(`run chmod 700 ${chdb} ${home}`)
    expect(err.message).toContain('or point READTRAIL_DATA_DIR, READTRAIL_CHECKPOINT_LOG, READTRAIL_VERIFY_STATE at a private directory')
  })

  it('skips directories that do not exist yet: they will be created private', () => {
    expect(findOpenDirectories([{ dir: join(fresh(), 'absent'), holds: 'x' }])).toEqual([])
  })

  it('quotes a path the shell would split in the suggested command', () => {
    const dir = join(fresh(), "my state's dir")
    mkdirSync(dir, { mode: 0o755 })
    chmodSync(dir, 0o755)
    expect(thrownBy(ReadtrailError, () => assertPrivateDirectories([{ dir, holds: 'x' }])).message).toContain(`chmod 700 '${dir.replace("'", `'\\''`)}'`)
  })
})
