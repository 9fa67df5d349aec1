import pino from 'pino'
import { createLogger, type Logger } from '../common/logger.js'
import { openStore, type Store } from '../store/store.js'
import type { AppConfig } from './config.js'

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
