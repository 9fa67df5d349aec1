import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { StoreConfig } from '../../store/config.js'
import { openStore, type Store } from '../../store/store.js'
import { testLogger } from './kafka.js'

/**
 * libchdb binds one data directory per process, and vitest runs each
 * integration file in its own process: one directory (and one connection) per
 * file, one fresh database per test inside it.
 */
let fileDataDir: string | undefined
let fileStore: Store | undefined

export function testDataDir(): string {
  if (!fileDataDir) {
    const dir = mkdtempSync(join(tmpdir(), 'readtrail-test-'))
    fileDataDir = dir
    afterAll(async () => {
      await fileStore?.close()
      fileStore = undefined
      rmSync(dir, { recursive: true, force: true })
    })
  }
  return fileDataDir
}

export function freshDatabaseName(): string {
  return `rt_${randomUUID().replace(/-/g, '').slice(0, 12)}`
}

export function testStoreConfig(database: string, dataDir = testDataDir()): StoreConfig {
  return StoreConfig.parse({
    url: process.env['READTRAIL_CLICKHOUSE_URL'] || undefined,
    username: process.env['READTRAIL_CLICKHOUSE_USER'] ?? 'default',
    password: process.env['READTRAIL_CLICKHOUSE_PASSWORD'] ?? '',
    database,
    dataDir,
  })
}

/**
 * Releases this file's data directory so a readtrail CLI process can own it
 * (libchdb lets one process hold it); the next openTestStore reopens it.
 */
export async function releaseTestStore(): Promise<void> {
  await fileStore?.close()
  fileStore = undefined
}

/** A store on a fresh database, schema created. */
export async function openTestStore(database = freshDatabaseName()): Promise<Store> {
  fileStore ??= openStore(testStoreConfig('default'), { command: `vitest worker ${process.pid}`, logger: testLogger })
  const store = fileStore.withDatabase(database)
  await store.ensureSchema()
  return store
}
