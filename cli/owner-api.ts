import { chmodSync, existsSync, rmSync } from 'node:fs'
import { createServer, request } from 'node:http'
import { join } from 'node:path'
import { describeError, isReadtrailError, ReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import { FactsRequestSchema, type FactsRequest } from '../integrity/facts.js'
import { collectFacts } from '../integrity/verify-store.js'
import type { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { answerEvidence } from './evidence-dispatch.js'
import { getSavedQuery } from '../queries/catalog.js'
import { executeSavedQuery } from '../queries/saved-query.js'
import { SubjectKeyEntries } from '../queries/subject-keys.js'
import type { Store } from '../store/store.js'

/**
 * chDB lets one process own a data directory, so while `readtrail consume`
 * owns the embedded store, `readtrail query` and `readtrail verify` in other
 * processes reach it through this process: a small HTTP API on a Unix socket
 * inside the data directory (mode 0600, so only the same user reaches it).
 */
export function ownerSocketPath(dataDir: string): string {
  return join(dataDir, 'readtrail.sock')
}

export type OwnerRequest =
  /** The asker's subject keys travel with the query: its config, not the owner's, says what a subject is. */
  | { op: 'query'; name: string; params: unknown; subjectKeys: [string, number][] }
  /** The store-side half of `readtrail verify`; the asking process judges the facts. */
  | { op: 'facts'; request: FactsRequest }
  | { op: 'evidence'; eventId: string; checkpoints: SignedCheckpoint[]; publicKeyPem: string }

/** Answers one request against the owned store. Everything in `ask` is validated again here: the socket is a boundary. */
async function answer(store: Store, ask: OwnerRequest): Promise<unknown> {
  switch (ask.op) {
    case 'query':
      return executeSavedQuery(store, getSavedQuery(String(ask.name)), ask.params, { subjectKeys: SubjectKeyEntries.parse(ask.subjectKeys ?? []) })
    case 'facts':
      return collectFacts(store, FactsRequestSchema.parse(ask.request))
    case 'evidence':
      return answerEvidence(store, ask)
    default:
      throw new ReadtrailError('USAGE', `unknown owner request ${JSON.stringify((ask as { op?: unknown }).op)}`)
  }
}

export async function serveOwnerApi(store: Store, dataDir: string, logger: Logger): Promise<() => Promise<void>> {
  const path = ownerSocketPath(dataDir)
  // Unix socket paths are limited to ~107 bytes on Linux.
  if (Buffer.byteLength(path) > 100) {
    logger.warn({ socket: path }, 'data directory path too long for a Unix socket: other processes cannot query through this one')
    return async () => {}
  }
  rmSync(path, { force: true })
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (c: string) => {
      body += c
      // Checkpoint lists travel in requests: allow some, never unbounded.
      if (body.length > 64_000_000) req.destroy()
    })
    req.on('end', () => {
      void (async () => {
        try {
          const result = await answer(store, JSON.parse(body) as OwnerRequest)
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result }))
        } catch (err) {
          const error = isReadtrailError(err) ? err.toJSON() : { code: 'USAGE', message: describeError(err) }
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error }))
        }
      })()
    })
  })
  // Created with mode 0600 from the start (umask), not chmod'ed after: no
  // window in which another user could connect.
  const umask = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve))
  } finally {
    process.umask(umask)
  }
  chmodSync(path, 0o600)
  logger.info({ socket: path }, 'serving queries for other readtrail processes')
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      rmSync(path, { force: true })
    })
}

/** Sends one request to the owning process; its coded errors come back as they were. */
export function callOwner<T>(dataDir: string, ask: OwnerRequest): Promise<T> | undefined {
  const socketPath = ownerSocketPath(dataDir)
  if (!existsSync(socketPath)) return undefined
  return new Promise<T>((resolve, reject) => {
    const req = request({ socketPath, path: '/', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => {
        try {
          const reply = JSON.parse(body) as { result?: T; error?: { code: ReadtrailError['code']; message: string; details?: Record<string, unknown> } }
          if (reply.error) reject(new ReadtrailError(reply.error.code, reply.error.message, { details: reply.error.details }))
          else resolve(reply.result as T)
        } catch (cause) {
          reject(new ReadtrailError('STORE_UNAVAILABLE', `unreadable reply from the owning readtrail process`, { cause, retriable: true }))
        }
      })
    })
    req.on('error', (cause) =>
      reject(
        new ReadtrailError('STORE_UNAVAILABLE', `cannot reach the owning readtrail process at ${socketPath}: ${cause.message}`, {
          cause,
          retriable: true,
          details: { unreachable: true },
        }),
      ),
    )
    req.end(JSON.stringify(ask))
  })
}
