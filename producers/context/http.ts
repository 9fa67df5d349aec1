import type { IncomingMessage, ServerResponse } from 'node:http'
import { componentLogger, type Logger } from '../../common/logger.js'
import { isReadtrailError } from '../../common/errors.js'
import { runInAuditScope } from './audit-context.js'
import { assertRequestContextOptions, deriveAuditScope, type RequestContextOptions } from './request-context.js'

export interface HttpAuditContextOptions extends RequestContextOptions<IncomingMessage> {
  /** Where a refused request is logged (error code and field names only). @default no logging */
  logger?: Logger
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

/**
 * Wraps a handler for http.createServer so it runs inside the request's audit
 * context. If the context cannot be derived the request is answered 500 with
 * `{"error":"CONTEXT_INVALID"}` and the handler never runs: serving data that
 * cannot be attributed would defeat the audit log.
 */
export function withAuditContext(handler: HttpHandler, options: HttpAuditContextOptions): (req: IncomingMessage, res: ServerResponse) => void {
  assertRequestContextOptions(options, 'withAuditContext')
  const log = options.logger && componentLogger(options.logger, 'audit-context')
  return (req, res) => {
    // The handler runs inside the fulfilment callback, never inside a catch:
    // its own errors surface as they would unwrapped instead of becoming 500s
    // blamed on the context.
    void deriveAuditScope(req, req, options).then(
      (scope) => runInAuditScope(scope, () => handler(req, res)),
      (err: unknown) => {
        // Only the code and the field names: the principal callback's own
        // message may name the user, and the body goes to an untrusted client.
        const issues = isReadtrailError(err) ? err.details?.['issues'] : undefined
        log?.warn({ code: 'CONTEXT_INVALID', issues, errorName: err instanceof Error ? err.name : typeof err }, 'request refused: no valid audit context')
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        }
        res.end('{"error":"CONTEXT_INVALID"}')
      },
    )
  }
}
