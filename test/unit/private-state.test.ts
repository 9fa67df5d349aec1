import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openCheckpointLog } from '../../checkpoints/checkpoint-log.js'
import { generateKeyFiles } from '../../checkpoints/keys.js'
import { loadAppConfig, stateDirectoriesOf } from '../../cli/config.js'
import { openAppStore } from '../../cli/runtime.js'
import { createLogger } from '../../common/logger.js'
import { claimDataDir } from '../../store/owner-lock.js'
import { thrown } from '../helpers/thrown.js'

const modeOf = (path: string) => statSync(path).mode & 0o777
const quiet = createLogger({ level: 'silent' })

/**
 * Issue 11, "nobody but its owner reads the log": the data directory was
 * created 0755 with 0644 files, and another local user copied it and read
 * every row with chDB. Each place that creates local state now creates it
 * owner-only, and refuses an existing directory others can reach.
 */
describe('local state is private by default', () => {
  const dirs: string[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-private-state-'))
    dirs.push(d)
    return d
  }
  /** A directory as an older readtrail (or a 022 umask) left it. */
  const leaked = (dir: string) => {
    mkdirSync(dir, { recursive: true })
    chmodSync(dir, 0o755)
    return dir
  }
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('the embedded data directory is created 0700 with its owner record 0600', () => {
    const dataDir = join(fresh(), 'home', 'chdb')
    const release = claimDataDir(dataDir, 'readtrail consume')
    try {
      expect(modeOf(join(dataDir, '..'))).toBe(0o700)
      expect(modeOf(dataDir)).toBe(0o700)
      expect(modeOf(join(dataDir, 'readtrail-owner.json'))).toBe(0o600)
    } finally {
      release()
    }
  })

  it('refuses to claim a data directory others can read, before writing anything into it', () => {
    const dataDir = leaked(join(fresh(), 'chdb'))
    expect(() => claimDataDir(dataDir, 'readtrail consume')).toThrow(expect.objectContaining({ code: 'DIRECTORY_NOT_PRIVATE', message: expect.stringContaining(`chmod 700 ${dataDir}`) }))
    expect(readdirSync(dataDir)).toEqual([])
  })

  it('the checkpoint log is created 0600 in a 0700 directory, and refused in one others can reach', async () => {
    const path = join(fresh(), 'home', 'checkpoints.jsonl')
    const log = await openCheckpointLog(path)
    await log.close()
    expect(modeOf(path)).toBe(0o600)
    expect(modeOf(join(path, '..'))).toBe(0o700)

    const open = leaked(join(fresh(), 'old-home'))
    expect(await thrown(openCheckpointLog(join(open, 'checkpoints.jsonl')))).toMatchObject({ code: 'DIRECTORY_NOT_PRIVATE' })
    expect(existsSync(join(open, 'checkpoints.jsonl'))).toBe(false)
  })

  it('both key files are 0600 in a 0700 directory; a key directory others can reach is refused with nothing written', () => {
    const keyPath = join(fresh(), 'keys', 'checkpoint.key')
    generateKeyFiles(keyPath)
    expect([modeOf(keyPath), modeOf(`${keyPath}.pub`), modeOf(join(keyPath, '..'))]).toEqual([0o600, 0o600, 0o700])

    const open = leaked(join(fresh(), 'keys'))
    expect(() => generateKeyFiles(join(open, 'checkpoint.key'))).toThrow(expect.objectContaining({ code: 'DIRECTORY_NOT_PRIVATE' }))
    expect(readdirSync(open)).toEqual([])
  })

  describe('the CLI checks every state directory of its configuration before it opens the store', () => {
    it('names the data directory, the checkpoint log, both private keys and the verify state; never the public keys', () => {
      const config = loadAppConfig({ READTRAIL_HOME: '/srv/rt', READTRAIL_CHECKPOINT_PUBLIC_KEY: '/etc/shared/cp.pub', READTRAIL_VERIFY_PUBLIC_KEY: '/etc/shared/v.pub' })
      expect(stateDirectoriesOf(config).map((d) => [d.dir, d.holds])).toEqual([
        ['/srv/rt/chdb', 'the embedded store'],
        ['/srv/rt', 'the checkpoint log'],
        ['/srv/rt/keys', 'the checkpoint signing key'],
        ['/srv/rt', 'the verify state'],
        ['/srv/rt/keys', 'the verifier key'],
      ])
    })

    it('leaves the data directory out with a ClickHouse server', () => {
      const config = loadAppConfig({ READTRAIL_HOME: '/srv/rt', READTRAIL_CLICKHOUSE_URL: 'http://127.0.0.1:8123' })
      expect(stateDirectoriesOf(config).map((d) => d.holds)).not.toContain('the embedded store')
    })

    it('refuses an old 0755 home in one error listing each open directory and the one chmod that fixes them', async () => {
      const home = leaked(join(fresh(), 'home'))
      leaked(join(home, 'chdb'))
      mkdirSync(join(home, 'keys'), { mode: 0o700 })
      const config = loadAppConfig({ READTRAIL_HOME: home })
      for (const create of [true, false]) {
        const err = await thrown(openAppStore(config, 'readtrail query', quiet, { create }))
        expect(err).toMatchObject({
          code: 'DIRECTORY_NOT_PRIVATE',
          details: {
            directories: [
              { dir: join(home, 'chdb'), mode: '755', holds: 'the embedded store' },
              { dir: home, mode: '755', holds: 'the checkpoint log, the verify state' },
            ],
          },
        })
        expect((err as Error).message).toContain(`run chmod 700 ${join(home, 'chdb')} ${home}`)
      }
      // Nothing was claimed or created on the way.
      expect(readdirSync(join(home, 'chdb'))).toEqual([])
    })
  })
})
