import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { LIMITS } from '../../schemas/access-event.js'
import { parseAuditContext, type AuditContext, type AuditContextInput } from './audit-context.js'

/** How an adapter finds who is reading; the application supplies it. */
export interface RequestContextOptions<Req = IncomingMessage> {
  /**
   * Who is reading: return undefined for an anonymous request (then no context
   * is set; hooked reads in it are recorded as `system` with a warning by the
   * hooks). May be async. An error it throws is passed on unchanged, so an
   * authentication failure keeps its own status.
   */
  principal: (req: Req) => AuditContextInput['principal'] | undefined | Promise<AuditContextInput['principal'] | undefined>
  /** Why the data is read (a ticket, a workflow); sent as is. */
  purpose?: (req: Req) => string | undefined
  /** Raw session id; only its keyed hash ever leaves the process. */
  sessionId?: (req: Req) => string | undefined
  /**
   * Take the client IP from the first X-Forwarded-For hop instead of the
   * socket (only behind a trusted proxy: anyone else can write that header).
   * @default false
   */
  trustProxy?: boolean
}

/**
 * The audit context of one request, validated and frozen, or undefined for an
 * anonymous request. `req` is what the application's callbacks receive (an
 * Express or Fastify request); `raw` is the Node message it wraps.
 * @throws AuditContextError (CONTEXT_INVALID) if the callbacks return an invalid context.
 */
export async function deriveAuditContext<Req>(
  req: Req,
  raw: IncomingMessage,
  options: RequestContextOptions<Req>,
): Promise<Readonly<AuditContext> | undefined> {
  const principal = await options.principal(req)
  if (principal === undefined) return undefined
  const context: AuditContextInput = { principal }
  const sessionId = options.sessionId?.(req)
  if (sessionId !== undefined) context.sessionId = sessionId
  const purpose = options.purpose?.(req)
  if (purpose !== undefined) context.purpose = purpose
  const clientIp = clientIpOf(raw, options.trustProxy ?? false)
  if (clientIp !== undefined) context.clientIp = clientIp
  const traceId = traceIdOf(raw.headers)
  if (traceId !== undefined) context.traceId = traceId
  return parseAuditContext(context)
}

/**
 * The address to record for the request. Headers are client-controlled, so an
 * address that does not parse is left out rather than failing the request: a
 * malformed X-Forwarded-For must not let a caller turn reads into 500s.
 */
export function clientIpOf(raw: IncomingMessage, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const forwarded = headerValue(raw.headers['x-forwarded-for'])
    // No header at all means the peer connected directly, so the socket is
    // the client. A header we cannot read means the proxy's own address would
    // be a wrong answer, so nothing is recorded.
    if (forwarded !== undefined) return normalizeIp(forwarded.split(',')[0]?.trim() ?? '')
  }
  return normalizeIp(raw.socket.remoteAddress ?? '')
}

function normalizeIp(address: string): string | undefined {
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; storing that
  // form would split one client into two addresses in access reports.
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  const ip = mapped?.[1] ?? address
  // Zone ids (fe80::1%eth0) are refused by ipAddress and by ClickHouse.
  return isIP(ip) !== 0 && !ip.includes('%') ? ip : undefined
}

// version-traceid-parentid-flags (W3C Trace Context, lowercase hex only).
// Versions after 00 may append fields; ff is forbidden.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/

/** The trace id of the request: the W3C traceparent's trace-id, else X-Request-Id. */
export function traceIdOf(headers: IncomingHttpHeaders): string | undefined {
  const traceparent = headerValue(headers['traceparent'])
  if (traceparent !== undefined) {
    const match = TRACEPARENT.exec(traceparent.trim())
    const [, version, traceId, parentId, rest] = match ?? []
    const valid =
      version !== undefined &&
      version !== 'ff' &&
      (version !== '00' || rest === undefined) &&
      !/^0+$/.test(traceId ?? '0') &&
      !/^0+$/.test(parentId ?? '0')
    if (valid) return traceId
  }
  const requestId = headerValue(headers['x-request-id'])?.trim()
  return requestId && requestId.length <= LIMITS.text ? requestId : undefined
}

// Node joins a repeated header into one string ("a, b"), so a repeated
// traceparent fails the format above and is ignored; arrays (set-cookie) are
// never one of the headers read here.
function headerValue(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined
}
