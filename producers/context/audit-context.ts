import { AsyncLocalStorage } from 'node:async_hooks'
import { z } from 'zod'
import { deepFreeze } from '../../common/config.js'
import { namedIssues } from '../../common/zod-issues.js'
import { LIMITS, ipAddress } from '../../schemas/access-event.js'
import { Principal } from '../../schemas/read-input.js'
import { AuditContextError } from './errors.js'

// The same principal schema and limits as schemas/read-input.ts: a context
// the SDK accepts here must never make the read it is merged into fail
// validation later.

/**
 * Who is reading, for every hooked read in the current async scope. The hooks
 * merge it into each ReadInput, so the fields mirror ReadInput's.
 */
export const AuditContext = z
  .object({
    principal: Principal,
    /** Raw session id; the SDK only ever sends its keyed hash. */
    sessionId: z.string().min(1).max(LIMITS.text).optional(),
    clientIp: ipAddress.optional(),
    purpose: z.string().min(1).max(LIMITS.text).optional(),
    traceId: z.string().min(1).max(LIMITS.text).optional(),
  })
  .strict()

export type AuditContext = z.output<typeof AuditContext>
export type AuditContextInput = z.input<typeof AuditContext>

const storage = new AsyncLocalStorage<Readonly<AuditContext>>()

// Contexts this module validated and froze. Being frozen they cannot have
// changed since, so an adapter that validated up front (to answer 500 before
// running the handler) does not pay for a second parse.
const validated = new WeakSet<object>()

/**
 * Validates a context and deep-freezes it, so no code running inside the scope
 * can change who a later read is attributed to.
 * @throws AuditContextError (CONTEXT_INVALID) naming every invalid field.
 */
export function parseAuditContext(input: AuditContextInput): Readonly<AuditContext> {
  if (typeof input === 'object' && input !== null && validated.has(input)) return input as Readonly<AuditContext>
  const result = AuditContext.safeParse(input)
  if (!result.success) throw new AuditContextError(namedIssues(result.error, '(context)'))
  const context = deepFreeze(result.data)
  validated.add(context)
  return context
}

/**
 * Validates the context once (CONTEXT_INVALID naming every bad field, and fn
 * is NOT run), freezes it, and runs fn inside it; returns fn's result. Nested
 * calls replace the context for the inner scope.
 */
export function runWithAuditContext<T>(context: AuditContextInput, fn: () => T): T {
  return storage.run(parseAuditContext(context), fn)
}

/**
 * Runs fn with no audit context, even inside an outer one. The adapters use it
 * for anonymous requests: a server started inside a context (a start-up job
 * running as `system`) must not lend that identity to an anonymous caller.
 */
export function runWithoutAuditContext<T>(fn: () => T): T {
  return storage.exit(fn)
}

/**
 * The context of the running async scope, or undefined. Called on every hooked
 * query, so it is a bare store lookup: validation happened on entry.
 */
export function currentAuditContext(): Readonly<AuditContext> | undefined {
  return storage.getStore()
}

/**
 * Wraps `fn` so that it runs in the audit context current now, wherever it
 * is called from later: for driver callbacks that fire in another request's
 * async scope (a pooled connection handed over on release). Cheaper than
 * AsyncResource.bind, which the hooks would pay on every query.
 */
export function bindToAuditContext<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  const context = storage.getStore()
  return context === undefined ? (...args: A) => storage.exit(fn, ...args) : (...args: A) => storage.run(context, fn, ...args)
}
