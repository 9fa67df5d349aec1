import type { NextFunction, Request, Response } from 'express'
import { runInAuditScope } from './audit-context.js'
import { assertRequestContextOptions, deriveAuditScope, type RequestContextOptions } from './request-context.js'

export type ExpressAuditContextOptions = RequestContextOptions<Request>

/**
 * Express middleware that runs the rest of the chain inside the request's
 * audit context. A callback error, or an invalid context (CONTEXT_INVALID),
 * goes to next(err) and no later middleware or route runs. An anonymous
 * request (principal returns undefined) keeps its client IP and trace id.
 * @throws ConfigError (CONFIG_INVALID) at once for sessionId without a producer that has a sessionHashKey.
 *
 * Mount it before the routes. A middleware that calls next() from a request
 * stream event loses the scope (Node emits those in the socket's async scope),
 * unless it binds its callback as raw-body does for express.json() and
 * express.urlencoded(); mount any other body parser before this middleware.
 */
export function auditContextMiddleware(options: ExpressAuditContextOptions): (req: Request, res: Response, next: NextFunction) => void {
  assertRequestContextOptions(options, 'auditContextMiddleware')
  return (req, _res, next) => {
    void deriveAuditScope(req, req, options).then(
      (scope) => runInAuditScope(scope, () => next()),
      (err: unknown) => next(err),
    )
  }
}
