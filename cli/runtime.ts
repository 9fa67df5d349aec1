import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createTerminalLogger, type Logger } from '../common/logger.js'
import { StoreError } from '../store/errors.js'
import { openStore, type Store } from '../store/store.js'
import { isReadtrailError, ReadtrailError } from '../common/errors.js'
import { assertPrivateDirectories } from '../common/private-dir.js'
import { stateDirectoriesOf, type AppConfig } from './config.js'
import { callOwner, ownerSocketPath, type OwnerRequest, type OwnerTarget } from './owner-api.js'
import { collectIndependentThroughOwner } from './owner-facts.js'

/** CLI logs go to stderr so stdout stays clean for results: one readable line each on a terminal, JSON otherwise. */
export function createCliLogger(): Logger {
  return createTerminalLogger({ fd: 2 })
}

/**
 * Throws DIRECTORY_NOT_PRIVATE, listing all of them in one go, unless every
 * existing state directory of the configuration is private. Readers check
 * too: they cannot make a leaked store private again, but refusing to run on
 * one is what gets its owner to fix it.
 */
export function assertStatePrivate(config: AppConfig): void {
  assertPrivateDirectories(stateDirectoriesOf(config))
}

const WHERE_STORES_ARE = 'point --data-dir, READTRAIL_DATA_DIR or READTRAIL_HOME at the store `readtrail consume` writes (only consume and demo create one)'

/** Where the store of this configuration is, for messages: the data directory, or the server's host (never its credentials). */
export function storeLocationOf(config: AppConfig): string {
  if (config.store.url === undefined) return resolve(config.store.dataDir)
  try {
    return new URL(config.store.url).host
  } catch {
    return 'the configured ClickHouse server'
  }
}

/**
 * Throws STORE_NOT_FOUND unless the embedded store of this configuration
 * exists: its data directory holds the engine's metadata. Checked before
 * the engine opens (it would make its files in any directory it is given)
 * and before a read-only command makes or reads anything else, so a typo in
 * --data-dir never leaves an empty store, or a verifier key, behind. On a
 * server, whether the database holds a log is found by checkSchema.
 */
export function assertStoreFound(config: AppConfig): void {
  if (config.store.url !== undefined) return
  const dir = resolve(config.store.dataDir)
  if (!existsSync(join(dir, ENGINE_METADATA))) {
    const what = existsSync(dir) ? 'the directory holds no embedded ClickHouse store' : 'no such directory'
    throw new StoreError('STORE_NOT_FOUND', `no readtrail store at ${dir} (${what}); ${WHERE_STORES_ARE}`, { details: { path: dir, database: config.store.database } })
  }
}

// The directory the engine keeps its databases' definitions in: present in every store it made.
const ENGINE_METADATA = 'metadata'

/**
 * Opens the store, once the state directories are private
 * (assertStatePrivate). Writers (`create`) create missing tables; readers
 * only check them, and never create an empty store where they were pointed
 * at a wrong directory or database (STORE_NOT_FOUND, naming where they looked).
 */
export async function openAppStore(config: AppConfig, command: string, logger: Logger, mode: { create: boolean } = { create: true }): Promise<Store> {
  assertStatePrivate(config)
  if (!mode.create) assertStoreFound(config)
  const store = openStore(config.store, { command, logger })
  try {
    if (mode.create) await store.ensureSchema()
    await store.checkSchema()
  } catch (err) {
    await store.close()
    if (isReadtrailError(err) && err.code === 'STORE_NOT_FOUND') {
      const path = storeLocationOf(config)
      throw new StoreError('STORE_NOT_FOUND', `${err.message} at ${path}; ${WHERE_STORES_ARE}, and --database at its database`, { cause: err, details: { ...err.details, path } })
    }
    throw err
  }
  return store
}

/** Where the store's owner is for this configuration, and the key that proves it. */
export function ownerTargetOf(config: AppConfig): OwnerTarget {
  return { dataDir: config.store.dataDir, database: config.store.database, publicKeyPath: config.checkpoints.publicKeyPath }
}

/**
 * Runs `local` on the store, or, when another readtrail process owns the
 * embedded store and serves its socket, asks that process instead. The
 * owner must prove every answer with the checkpoint key (OWNER_UNTRUSTED
 * otherwise). `verify --independent` does not ask the owner for facts: it
 * fetches the owner's raw rows and hashes them here (cli/owner-facts.ts), so
 * the hashing and the verdict stay in this process.
 */
export async function withStore<T>(
  config: AppConfig,
  command: string,
  logger: Logger,
  local: (store: Store) => Promise<T>,
  remote: OwnerRequest,
): Promise<T> {
  let store: Store
  try {
    store = await openAppStore(config, command, logger, { create: false })
  } catch (err) {
    const locked = isReadtrailError(err) && err.code === 'STORE_LOCKED' && existsSync(ownerSocketPathOf(config))
    if (!locked) throw err
    logger.debug({ owner: err instanceof ReadtrailError ? err.details : undefined }, 'store owned by another process: asking it')
    const target = ownerTargetOf(config)
    // The independent mode hashes the owner's raw rows here (the facts are Facts, the type `local` returns for this request).
    const viaOwner = remote.op === 'facts' && remote.request.mode === 'independent' ? (collectIndependentThroughOwner(target, remote.request) as Promise<T>) : callOwner<T>(target, remote)
    if (!viaOwner) throw err
    // A socket left behind by an owner that no longer serves: report the lock.
    return viaOwner.catch((ownerErr: unknown) => {
      throw isReadtrailError(ownerErr) && ownerErr.details?.['unreachable'] ? err : ownerErr
    })
  }
  try {
    return await local(store)
  } finally {
    await store.close()
  }
}

function ownerSocketPathOf(config: AppConfig): string {
  return ownerSocketPath(config.store.dataDir)
}
