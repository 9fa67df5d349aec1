import { existsSync } from 'node:fs'
import pino from 'pino'
import { createLogger, type Logger } from '../common/logger.js'
import { StoreError } from '../store/errors.js'
import { openStore, type Store } from '../store/store.js'
import { isReadtrailError, ReadtrailError } from '../common/errors.js'
import { assertPrivateDirectories } from '../common/private-dir.js'
import { stateDirectoriesOf, type AppConfig } from './config.js'
import { callOwner, ownerSocketPath, type OwnerRequest, type OwnerTarget } from './owner-api.js'
import { collectIndependentThroughOwner } from './owner-facts.js'

/** CLI logs go to stderr so stdout stays clean for results. */
export function createCliLogger(): Logger {
  return createLogger({}, pino.destination(2))
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

/**
 * Opens the store, once the state directories are private
 * (assertStatePrivate). Writers (`create`) create missing tables; readers
 * only check them, and never create an empty store where they were pointed
 * at a wrong directory or database.
 */
export async function openAppStore(config: AppConfig, command: string, logger: Logger, mode: { create: boolean } = { create: true }): Promise<Store> {
  assertStatePrivate(config)
  if (!mode.create && config.store.url === undefined && !existsSync(config.store.dataDir)) {
    throw new StoreError('STORE_SCHEMA_MISMATCH', `no readtrail store at ${config.store.dataDir} (set --data-dir or READTRAIL_DATA_DIR)`)
  }
  const store = openStore(config.store, { command, logger })
  try {
    if (mode.create) await store.ensureSchema()
    await store.checkSchema()
  } catch (err) {
    await store.close()
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
