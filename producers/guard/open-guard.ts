import type { Logger } from '../../common/logger.js'
import { createExtractionGuard, type ExtractionGuard } from './extraction-guard.js'
import type { GuardConfig } from './guard-config.js'
import { createMemoryBudgetStore } from './memory-budget-store.js'
import { createRedisBudgetStore } from './redis-budget-store.js'

/** The in-process store's key prefix: only names counters in this process's map. */
const MEMORY_PREFIX = 'readtrail:guard:'

/** The guard a hook configuration asks for: counted in Redis when `redis` is set, in this process otherwise. */
export function openExtractionGuard(config: Readonly<GuardConfig>, logger: Logger): ExtractionGuard {
  const store = config.redis ? createRedisBudgetStore(config.redis, { logger }) : createMemoryBudgetStore({ maxKeys: config.maxPrincipals })
  return createExtractionGuard(config, { store, logger, keyPrefix: config.redis?.keyPrefix ?? MEMORY_PREFIX })
}
