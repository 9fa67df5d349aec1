import type { NextFunction, Request, Response } from 'express'
import { runWithAuditContext, runWithoutAuditContext } from './audit-context.js'
import { deriveAuditContext, type RequestContextOptions } from './request-context.js'

export type ExpressAuditContextOptions = RequestContextOptions<Request>

/**
 * Express middleware that runs the rest of the chain inside the request's
 * audit context. A callback error, or an invalid context (CONTEXT_INVALID),
 * goes to next(err) and no later middleware or route runs.
 *
 * Mount it before the routes. A middleware that calls next() from a request
 * stream event loses the scope (Node emits those in the socket's async scope),
 * unless it binds its callback as raw-body does for express.json() and
 * express.urlencoded(); mount any other body parser before this middleware.
 */
export function auditContextMiddleware(options: ExpressAuditContextOptions): (req: Request, res: Response, next: NextFunction) => void {
  return (req, _res, next) => {
    void deriveAuditContext(req, req, options).then(
      (context) => (context === undefined ? runWithoutAuditContext(() => next()) : runWithAuditContext(context, () => next())),
      (err: unknown) => next(err),
    )
  }
}
