import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import express, { type NextFunction, type Request, type Response } from 'express'
import Fastify, { type FastifyError } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { currentAuditContext, runWithAuditContext } from '../../producers/context/audit-context.js'
import { auditContextMiddleware } from '../../producers/context/express.js'
import { registerAuditContext } from '../../producers/context/fastify.js'
import { withAuditContext } from '../../producers/context/http.js'
import { clientIpOf, traceIdOf, type RequestContextOptions } from '../../producers/context/request-context.js'
import { LIMITS } from '../../schemas/access-event.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`

type Options = RequestContextOptions<{ headers: IncomingHttpHeaders }>

/** What the route saw, read after the kinds of hop a real handler makes. */
interface Probe {
  atStart: unknown
  afterTimer: unknown
  inImmediate: unknown
  inPromiseAll: unknown[]
  body?: unknown
}

class Unauthorized extends Error {
  override readonly name = 'Unauthorized'
  readonly statusCode = 401
  readonly status = 401
}

/**
 * The application's principal lookup, driven by test headers: x-user names
 * the principal, x-principal-delay makes the lookup async, x-invalid returns
 * an invalid principal and x-throw an authentication failure.
 */
function testOptions(extra: Partial<Options> = {}): Options {
  return {
    principal: async (req) => {
      const wait = Number(req.headers['x-principal-delay'] ?? 0)
      if (wait > 0) await delay(wait)
      if (req.headers['x-throw'] !== undefined) throw new Unauthorized('no such user: alice@example.com')
      if (req.headers['x-invalid'] !== undefined) return { id: '', type: 'robot' as 'user' }
      const id = req.headers['x-user']
      return typeof id === 'string' ? { id, type: 'user' } : undefined
    },
    purpose: (req) => (typeof req.headers['x-purpose'] === 'string' ? req.headers['x-purpose'] : undefined),
    ...extra,
  }
}

// null rather than undefined: it has to survive JSON.
const now = (): unknown => currentAuditContext() ?? null

async function probe(headers: IncomingHttpHeaders): Promise<Probe> {
  const atStart = now()
  await delay(Number(headers['x-handler-delay'] ?? 1))
  const afterTimer = now()
  const inImmediate = await new Promise((resolve) => setImmediate(() => resolve(now())))
  const inPromiseAll = await Promise.all([
    delay(Math.floor(Math.random() * 3)).then(now),
    Promise.resolve().then(now),
    new Promise((resolve) => setTimeout(() => resolve(now()), 1)),
  ])
  return { atStart, afterTimer, inImmediate, inPromiseAll }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let text = ''
  for await (const chunk of req) text += String(chunk)
  return text === '' ? undefined : JSON.parse(text)
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

interface Harness {
  /** Starts a server whose one route (GET or POST /) answers with its Probe; `calls` counts route runs. */
  start(options: Options): Promise<{ url: string; calls: () => number }>
}

const harnesses: Record<string, Harness> = {
  http: {
    async start(options) {
      let calls = 0
      const server = createServer(
        withAuditContext(async (req, res) => {
          calls++
          const body = await readBody(req)
          const seen = { ...(await probe(req.headers)), body, afterBody: now() }
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify(seen))
        }, options),
      )
      return { url: await listen(server), calls: () => calls }
    },
  },
  express: {
    async start(options) {
      let calls = 0
      const app = express()
      app.use(auditContextMiddleware(options))
      app.use(express.json({ limit: '1mb' }))
      app.all('/', async (req, res) => {
        calls++
        res.json({ ...(await probe(req.headers)), body: req.body as unknown })
      })
      app.use((err: Error & { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
        res.status(err.status ?? 500).json({ error: err.code ?? err.name })
      })
      return { url: await listen(createServer(app)), calls: () => calls }
    },
  },
  fastify: {
    async start(options) {
      let calls = 0
      const app = Fastify()
      registerAuditContext(app, options)
      app.setErrorHandler((err: FastifyError, _req, reply) => {
        void reply.status(err.statusCode ?? 500).send({ error: err.code ?? err.name })
      })
      app.route({
        method: ['GET', 'POST'],
        url: '/',
        handler: async (req) => {
          calls++
          return { ...(await probe(req.headers)), body: req.body }
        },
      })
      onTestFinished(() => app.close())
      const url = await app.listen({ port: 0, host: '127.0.0.1' })
      return { url, calls: () => calls }
    },
  },
}

function contextsIn(seen: Probe): unknown[] {
  return [seen.atStart, seen.afterTimer, seen.inImmediate, ...seen.inPromiseAll]
}

describe.each(Object.entries(harnesses))('%s adapter', (_name, harness) => {
  it('runs the handler inside the context, across awaits, timers, setImmediate and Promise.all', async () => {
    const { url } = await harness.start(testOptions())
    const res = await fetch(url, { headers: { 'x-user': 'alice', 'x-purpose': 'ticket-42', 'x-principal-delay': '2', traceparent: TRACEPARENT } })
    expect(res.status).toBe(200)
    const expected = { principal: { id: 'alice', type: 'user' }, purpose: 'ticket-42', clientIp: '127.0.0.1', traceId: TRACE_ID }
    for (const context of contextsIn((await res.json()) as Probe)) expect(context).toEqual(expected)
  })

  it('keeps the context through reading a request body', async () => {
    const { url } = await harness.start(testOptions())
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'x-user': 'bob', 'content-type': 'application/json' },
      body: JSON.stringify({ q: 'x'.repeat(200_000) }),
    })
    expect(res.status).toBe(200)
    const seen = (await res.json()) as Probe & { afterBody?: unknown }
    expect((seen.body as { q: string }).q).toHaveLength(200_000)
    for (const context of [...contextsIn(seen), seen.afterBody ?? seen.atStart]) {
      expect(context).toMatchObject({ principal: { id: 'bob' } })
    }
  })

  it('never lets 50 interleaved requests see each other’s context', async () => {
    const { url } = await harness.start(testOptions())
    const ids = Array.from({ length: 50 }, (_, i) => `user-${i}`)
    const results = await Promise.all(
      ids.map(async (id) => {
        const res = await fetch(url, {
          headers: {
            'x-user': id,
            'x-request-id': `req-${id}`,
            'x-principal-delay': String(Math.floor(Math.random() * 10)),
            'x-handler-delay': String(Math.floor(Math.random() * 10)),
          },
        })
        return (await res.json()) as Probe
      }),
    )
    results.forEach((seen, i) => {
      for (const context of contextsIn(seen)) {
        expect(context).toMatchObject({ principal: { id: ids[i] }, traceId: `req-${ids[i]}` })
      }
    })
  })

  it('takes the trace id from traceparent, else X-Request-Id, else leaves it out', async () => {
    const { url } = await harness.start(testOptions())
    const traceOf = async (headers: Record<string, string>): Promise<unknown> => {
      const seen = (await (await fetch(url, { headers: { 'x-user': 'alice', ...headers } })).json()) as { atStart: { traceId?: string } }
      return seen.atStart.traceId
    }
    expect(await traceOf({ traceparent: TRACEPARENT, 'x-request-id': 'req-1' })).toBe(TRACE_ID)
    expect(await traceOf({ 'x-request-id': 'req-1' })).toBe('req-1')
    expect(await traceOf({ traceparent: 'not-a-traceparent', 'x-request-id': 'req-2' })).toBe('req-2')
    expect(await traceOf({})).toBeUndefined()
  })

  it('reads the client IP from the socket unless trustProxy is on', async () => {
    const forwardedFor = { 'x-user': 'alice', 'x-forwarded-for': '203.0.113.7, 10.0.0.1' }
    const direct = await harness.start(testOptions())
    const ignored = (await (await fetch(direct.url, { headers: forwardedFor })).json()) as Probe
    expect(ignored.atStart).toMatchObject({ clientIp: '127.0.0.1' })

    const proxied = await harness.start(testOptions({ trustProxy: true }))
    const trusted = (await (await fetch(proxied.url, { headers: forwardedFor })).json()) as Probe
    expect(trusted.atStart).toMatchObject({ clientIp: '203.0.113.7' })
    const garbled = (await (await fetch(proxied.url, { headers: { 'x-user': 'alice', 'x-forwarded-for': 'unknown, 10.0.0.1' } })).json()) as Probe
    expect(garbled.atStart).toEqual({ principal: { id: 'alice', type: 'user' } })
  })

  it('refuses an invalid principal with 500 CONTEXT_INVALID without running the route', async () => {
    const { url, calls } = await harness.start(testOptions())
    const res = await fetch(url, { headers: { 'x-invalid': '1' } })
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ error: 'CONTEXT_INVALID' })
    expect(calls()).toBe(0)
  })

  it('sets no context for an anonymous request, even in a server started inside one', async () => {
    const { url } = await runWithAuditContext({ principal: { id: 'boot', type: 'system' } }, () => harness.start(testOptions()))
    const seen = (await (await fetch(url)).json()) as Probe
    for (const context of contextsIn(seen)) expect(context).toBeNull()
  })
})

describe('principal callback errors', () => {
  it('http answers 500 CONTEXT_INVALID without the callback’s message', async () => {
    const { url, calls } = await harnesses['http']!.start(testOptions())
    const res = await fetch(url, { headers: { 'x-throw': '1' } })
    expect(res.status).toBe(500)
    expect(await res.text()).toBe('{"error":"CONTEXT_INVALID"}')
    expect(calls()).toBe(0)
  })

  it('http logs the refusal with the error code and field names only', async () => {
    const lines: string[] = []
    const logger = createLogger({ level: 'warn' }, { write: (line: string) => void lines.push(line) })
    const server = createServer(withAuditContext(() => undefined, { ...testOptions(), logger }))
    const url = await listen(server)
    expect((await fetch(url, { headers: { 'x-throw': '1' } })).status).toBe(500)
    expect((await fetch(url, { headers: { 'x-invalid': '1' } })).status).toBe(500)
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(logged).toMatchObject([
      { code: 'CONTEXT_INVALID', errorName: 'Unauthorized', component: 'audit-context' },
      { code: 'CONTEXT_INVALID', errorName: 'AuditContextError', issues: [{ key: 'principal.id' }, { key: 'principal.type' }] },
    ])
    expect(lines.join('')).not.toContain('alice')
  })

  it.each(['express', 'fastify'])('%s passes the application’s own error on, keeping its status', async (name) => {
    const { url, calls } = await harnesses[name]!.start(testOptions())
    const res = await fetch(url, { headers: { 'x-throw': '1' } })
    expect(res.status).toBe(401)
    expect(calls()).toBe(0)
  })
})

describe('traceIdOf', () => {
  it.each([
    ['a version 00 traceparent', { traceparent: TRACEPARENT }, TRACE_ID],
    ['surrounding spaces', { traceparent: ` ${TRACEPARENT} ` }, TRACE_ID],
    ['a later version with extra fields', { traceparent: `cc-${TRACE_ID}-00f067aa0ba902b7-01-what-the-future-holds` }, TRACE_ID],
    ['version ff', { traceparent: `ff-${TRACE_ID}-00f067aa0ba902b7-01` }, undefined],
    ['version 00 with extra fields', { traceparent: `${TRACEPARENT}-extra` }, undefined],
    ['uppercase hex', { traceparent: TRACEPARENT.toUpperCase() }, undefined],
    ['an all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` }, undefined],
    ['an all-zero parent id', { traceparent: `00-${TRACE_ID}-${'0'.repeat(16)}-01` }, undefined],
    ['a repeated traceparent', { traceparent: `${TRACEPARENT}, ${TRACEPARENT}` }, undefined],
    ['an x-request-id', { 'x-request-id': ' req-7 ' }, 'req-7'],
    ['an over-long x-request-id', { 'x-request-id': 'r'.repeat(LIMITS.text + 1) }, undefined],
    ['a blank x-request-id', { 'x-request-id': '  ' }, undefined],
    ['no header', {}, undefined],
  ])('%s', (_what, headers: IncomingHttpHeaders, expected) => {
    expect(traceIdOf(headers)).toBe(expected)
  })
})

describe('clientIpOf', () => {
  const message = (remoteAddress: string | undefined, forwardedFor?: string): IncomingMessage =>
    ({ headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }, socket: { remoteAddress } }) as unknown as IncomingMessage

  it.each([
    ['a plain IPv4 socket', message('192.0.2.1'), false, '192.0.2.1'],
    ['an IPv4-mapped IPv6 socket', message('::ffff:192.0.2.1'), false, '192.0.2.1'],
    ['an IPv6 socket', message('2001:db8::1'), false, '2001:db8::1'],
    ['a zone id', message('fe80::1%eth0'), false, undefined],
    ['a closed socket', message(undefined), false, undefined],
    ['X-Forwarded-For without trustProxy', message('192.0.2.1', '203.0.113.7'), false, '192.0.2.1'],
    ['the first X-Forwarded-For hop', message('192.0.2.1', ' 203.0.113.7 , 10.0.0.1'), true, '203.0.113.7'],
    ['an IPv4-mapped forwarded hop', message('192.0.2.1', '::ffff:203.0.113.7'), true, '203.0.113.7'],
    ['a forwarded IPv6 hop', message('192.0.2.1', '2001:db8::7'), true, '2001:db8::7'],
    ['an invalid forwarded hop', message('192.0.2.1', 'evil.example, 10.0.0.1'), true, undefined],
    ['a forwarded hop with a port', message('192.0.2.1', '203.0.113.7:4711'), true, undefined],
    ['trustProxy with no X-Forwarded-For', message('192.0.2.1'), true, '192.0.2.1'],
  ])('%s', (_what, req, trustProxy, expected) => {
    expect(clientIpOf(req, trustProxy)).toBe(expected)
  })
})
