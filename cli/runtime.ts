import pino from 'pino'
import { createLogger, type Logger } from '../common/logger.js'
import { openStore, type Store } from '../store/store.js'
import { isReadtrailError, ReadtrailError } from '../common/errors.js'
import type { AppConfig } from './config.js'
import { callOwner, type OwnerRequest } from './owner-api.js'

/** CLI logs go to stderr so stdout stays clean for results. */
export function createCliLogger(): Logger {
  return createLogger({}, pino.destination(2))
}

export async function openAppStore(config: AppConfig, command: string, logger: Logger): Promise<Store> {
  const store = openStore(config.store, { command, logger })
  try {
    await store.ensureSchema()
  } catch (err) {
    await store.close()
    throw err
  }
  return store
}

/**
 * Runs `local` on the store, or, when another readtrail process owns the
 * embedded store and serves its socket, asks that process instead.
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
    store = await openAppStore(config, command, logger)
  } catch (err) {
    const viaOwner = isReadtrailError(err) && err.code === 'STORE_LOCKED' ? callOwner<T>(config.store.dataDir, remote) : undefined
    if (!viaOwner) throw err
    logger.debug({ owner: err instanceof ReadtrailError ? err.details : undefined }, 'store owned by another process: asking it')
    return viaOwner
  }
  try {
    return await local(store)
  } finally {
    await store.close()
  }
}
