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

/**
 * What is known of an anonymous request (the application's principal
 * callback returned undefined): where it came from and its trace, no
 * principal. Its reads are recorded under the service's `system` principal
 * with this client IP and trace id, so a read through a public endpoint
 * still points at the address that made it.
 */
export const AnonymousAuditContext = AuditContext.omit({ principal: true }).strict()
export type AnonymousAuditContext = z.output<typeof AnonymousAuditContext>

/** The scope hooked reads run in: a principal's context, or an anonymous request's. */
export type AuditScope = Readonly<AuditContext> | Readonly<AnonymousAuditContext & { principal?: undefined }>

const storage = new AsyncLocalStorage<AuditScope>()

// Contexts this module validated and froze. Being frozen they cannot have
// changed since, so an adapter that validated up front (to answer 500 before
// running the handler) does not pay for a second parse.
const validated = new WeakSet<object>()
// Kept apart: an anonymous context must never pass for a principal's.
const validatedAnonymous = new WeakSet<object>()

/**
 * Validates a context and deep-freezes it, so no code running inside the scope
 * can change who a later read is attributed to.
 * @throws AuditContextError (CONTEXT_INVALID) naming every invalid field.
 */
export function parseAuditContext(input: AuditContextInput): Readonly<AuditContext> {
  return parseFrozen(AuditContext, validated, input)
}

/** The same for an anonymous request's context (no principal). */
export function parseAnonymousContext(input: z.input<typeof AnonymousAuditContext>): Readonly<AnonymousAuditContext> {
  return parseFrozen(AnonymousAuditContext, validatedAnonymous, input)
}

function parseFrozen<S extends z.ZodType<object>>(schema: S, seen: WeakSet<object>, input: unknown): Readonly<z.output<S>> {
  if (typeof input === 'object' && input !== null && seen.has(input)) return input as Readonly<z.output<S>>
  const result = schema.safeParse(input)
  if (!result.success) throw new AuditContextError(namedIssues(result.error, '(context)'))
  const context = deepFreeze(result.data)
  seen.add(context)
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
 * Validates an anonymous request's context (CONTEXT_INVALID naming every bad
 * field), freezes it, and runs fn inside it. Like runWithoutAuditContext it
 * hides any outer principal: a server started inside a context must not lend
 * that identity to an anonymous caller.
 */
export function runAnonymously<T>(context: z.input<typeof AnonymousAuditContext>, fn: () => T): T {
  return storage.run(parseAnonymousContext(context), fn)
}

/** Runs fn in a principal's or an anonymous scope (validated here unless it came from a parse function). */
export function runInAuditScope<T>(scope: AuditScope, fn: () => T): T {
  return storage.run(scope.principal === undefined ? parseAnonymousContext(scope) : parseAuditContext(scope), fn)
}

/**
 * Runs fn with no audit context, even inside an outer one. The adapters use it
 * for anonymous requests: a server started inside a context (a start-up job
 * running as `system`) must not lend that identity to an anonymous caller.
 */
export function runWithoutAuditContext<T>(fn: () => T): T {
  return storage.exit(fn)
}

/** The principal's context of the running async scope, or undefined (none, or an anonymous request). */
export function currentAuditContext(): Readonly<AuditContext> | undefined {
  const scope = storage.getStore()
  return scope?.principal === undefined ? undefined : (scope as Readonly<AuditContext>)
}

/**
 * The scope of the running async scope, anonymous requests included, or
 * undefined. Called on every hooked query, so it is a bare store lookup:
 * validation happened on entry.
 */
export function currentAuditScope(): AuditScope | undefined {
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
