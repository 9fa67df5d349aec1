import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { runInAuditScope } from './audit-context.js'
import { assertRequestContextOptions, deriveAuditScope, type RequestContextOptions } from './request-context.js'

export type FastifyAuditContextOptions = RequestContextOptions<FastifyRequest>

/** The slice of a Fastify instance used here, so an instance with any logger or type provider fits. */
export interface AuditContextHookTarget {
  addHook(name: 'onRequest', hook: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void): unknown
}

/**
 * Makes the routes of `fastify` (in its encapsulation context) run inside the
 * request's audit context (an anonymous request keeps its client IP and
 * trace id). CONFIG_INVALID at once for sessionId without a producer that
 * has a sessionHashKey. A callback error, or an invalid context
 * (CONTEXT_INVALID), goes to done(err) and so to Fastify's error handler; the
 * route handler does not run.
 *
 * Fastify runs the rest of the lifecycle from done(), so calling done inside
 * the scope carries it to the handler. Once there is a body, the handler is
 * reached from the stream's `end` event instead, which Node emits in the
 * socket's scope; Fastify 5 runs content-type parsers in an AsyncResource
 * bound to the request, which keeps ours (test/unit/context-adapters.test.ts
 * posts a multi-chunk body to prove it).
 */
export function registerAuditContext(fastify: AuditContextHookTarget, options: FastifyAuditContextOptions): void {
  assertRequestContextOptions(options, 'registerAuditContext')
  fastify.addHook('onRequest', (request, _reply, done) => {
    void deriveAuditScope(request, request.raw, options).then(
      (scope) => runInAuditScope(scope, () => done()),
      (err: unknown) => done(err instanceof Error ? err : new Error('principal callback failed', { cause: err })),
    )
  })
}
