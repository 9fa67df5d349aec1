import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { ConfigError } from '../../common/errors.js'
import { LIMITS } from '../../schemas/access-event.js'
import { parseAnonymousContext, parseAuditContext, type AnonymousAuditContext, type AuditContext, type AuditContextInput, type AuditScope } from './audit-context.js'

/** How an adapter finds who is reading; the application supplies it. */
export interface RequestContextOptions<Req = IncomingMessage> {
  /**
   * Who is reading: return undefined for an anonymous request (its hooked
   * reads are then recorded under the service's `system` principal, with the
   * request's client IP, trace id, purpose and session). May be async. An error it throws is passed on unchanged, so an
   * authentication failure keeps its own status.
   */
  principal: (req: Req) => AuditContextInput['principal'] | undefined | Promise<AuditContextInput['principal'] | undefined>
  /** Why the data is read (a ticket, a workflow); sent as is. */
  purpose?: (req: Req) => string | undefined
  /**
   * Raw session id; only its keyed hash ever leaves the process, so it needs
   * `producer` too, whose `sessionHashKey` hashes it.
   */
  sessionId?: (req: Req) => string | undefined
  /**
   * The producer the request's reads go to. Required with `sessionId`: the
   * adapter refuses at once (CONFIG_INVALID naming sessionHashKey) a
   * producer without a key, which would otherwise fail every read.
   */
  producer?: SessionHashing
  /**
   * Take the client IP from the first X-Forwarded-For hop instead of the
   * socket (only behind a trusted proxy: anyone else can write that header).
   * @default false
   */
  trustProxy?: boolean
}

/** The part of an AuditProducer an adapter checks: whether session ids can be hashed. */
export interface SessionHashing {
  readonly config: { readonly sessionHashKey?: Buffer | undefined }
}

/**
 * Refuses, when the adapter is made, options whose session id no read could
 * carry: without a key the producer refuses every event with a session id
 * (raw session ids are never sent), so every read of the application would
 * fail, or go unrecorded on fail-open tables.
 * @throws ConfigError (CONFIG_INVALID) naming the key.
 */
export function assertRequestContextOptions(options: RequestContextOptions<never>, adapter: string): void {
  if (options.sessionId === undefined) return
  if (options.producer === undefined) {
    throw new ConfigError(`${adapter}: producer: required with sessionId (the AuditProducer whose sessionHashKey hashes it), so a producer without a key fails now rather than every read later`, { details: { issues: [{ key: 'producer', problem: 'required with sessionId' }] } })
  }
  if (options.producer.config.sessionHashKey === undefined) {
    throw new ConfigError(`${adapter}: sessionHashKey: the producer has none, so every read with a sessionId would fail; set sessionHashKey (at least 32 random bytes) in createAuditProducer, or drop sessionId`, { details: { issues: [{ key: 'sessionHashKey', problem: 'required with sessionId' }] } })
  }
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
  const scope = await deriveAuditScope(req, raw, options)
  return scope.principal === undefined ? undefined : (scope as Readonly<AuditContext>)
}

/**
 * The scope of one request, validated and frozen: a principal's context, or
 * for an anonymous request what is known of it without one (client IP,
 * trace id, purpose, session), which the adapters keep too.
 * @throws AuditContextError (CONTEXT_INVALID) if the callbacks return an invalid context.
 */
export async function deriveAuditScope<Req>(req: Req, raw: IncomingMessage, options: RequestContextOptions<Req>): Promise<AuditScope> {
  const principal = await options.principal(req)
  const context: Partial<AuditContextInput> = principal === undefined ? {} : { principal }
  const sessionId = options.sessionId?.(req)
  if (sessionId !== undefined) context.sessionId = sessionId
  const purpose = options.purpose?.(req)
  if (purpose !== undefined) context.purpose = purpose
  const clientIp = clientIpOf(raw, options.trustProxy ?? false)
  if (clientIp !== undefined) context.clientIp = clientIp
  const traceId = traceIdOf(raw.headers)
  if (traceId !== undefined) context.traceId = traceId
  return context.principal === undefined ? parseAnonymousContext(context as AnonymousAuditContext) : parseAuditContext(context as AuditContextInput)
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
