import { chmodSync, existsSync, realpathSync, rmSync } from 'node:fs'
import { createHash, type KeyObject } from 'node:crypto'
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { describeError, isReadtrailError, ReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import { isProcessAlive } from '../common/process.js'
import { FactsRequestSchema, type FactsRequest } from '../integrity/facts.js'
import { NO_CACHES } from '../integrity/no-caches.js'
import { checkQueryTables } from '../integrity/check-query-tables.js'
import { collectFacts } from '../integrity/verify-store.js'
import type { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { loadPublicKey, type SigningKey } from '../checkpoints/keys.js'
import { answerEvidence } from './evidence-dispatch.js'
import { getSavedQuery } from '../queries/catalog.js'
import { executeSavedQuery } from '../queries/saved-query.js'
import { SubjectKeyEntries } from '../queries/subject-keys.js'
import { readOwnerRecord } from '../store/owner-lock.js'
import type { Store } from '../store/store.js'
import { createNonce, digestOf, isNonce, isOwnerAnswerSigned, signOwnerAnswer, type OwnerProofFields } from './owner-auth.js'
import { createOwnerAdmission, OWNER_LIMITS, type OwnerAdmission } from './owner-admission.js'
import { checkPeerHoldsSocket } from './owner-peer.js'
import { resolveOwnerRead, type OwnerReadFormat } from './owner-reads.js'

/**
 * chDB lets one process own a data directory, so while `readtrail consume`
 * owns the embedded store, `readtrail query` and `readtrail verify` in other
 * processes reach it through this process: a small HTTP API on a Unix socket
 * inside the data directory (mode 0600, so only the same user reaches it).
 *
 * The socket and the owner record are files in a directory an attacker may
 * be able to write, so neither is trusted: every answer is signed with the
 * checkpoint key (cli/owner-auth.ts) and the asker checks it, and the pid,
 * before it reads a byte of the answer.
 */
export function ownerSocketPath(dataDir: string): string {
  return join(dataDir, 'readtrail.sock')
}

/**
 * The path both sides sign and compare: the data directory with its
 * symlinks resolved, so a relative --data-dir or another cwd names the same
 * socket. undefined when the directory does not exist.
 */
function canonicalSocketPath(dataDir: string): string | undefined {
  try {
    return ownerSocketPath(realpathSync(dataDir))
  } catch {
    return undefined
  }
}

export type OwnerRequest =
  /** The asker's subject keys travel with the query: its config, not the owner's, says what a subject is. */
  | { op: 'query'; name: string; params: unknown; subjectKeys: [string, number][] }
  /** The store-side half of `readtrail verify --in-db`; the asking process judges the facts. */
  | { op: 'facts'; request: FactsRequest }
  | { op: 'evidence'; eventId: string; checkpoints: SignedCheckpoint[]; publicKeyPem: string }
  /** One of the fixed row reads of cli/owner-reads.ts: `verify --independent` hashes them itself. */
  | { op: 'rows'; query: string; params: Record<string, unknown>; format: OwnerReadFormat }
  /**
   * `verify --independent`'s check of the query tables' definitions: what
   * engine and SELECT a table has only the engine can say, and the check
   * builds its expected form in a scratch database, which only the owner can.
   */
  | { op: 'query-tables' }

/** Longest answer an asker reads: JSON answers are bounded facts and rows; raw rows are one segment, or the producer scan. */
const MAX_JSON_ANSWER_BYTES = 256 * 1024 * 1024
const MAX_ROWS_ANSWER_BYTES = 1024 * 1024 * 1024

type Answer = { kind: 'json'; value: unknown } | { kind: 'rows'; bytes: Buffer }

/** Answers one request against the owned store. Everything in `ask` is validated again here: the socket is a boundary. */
async function answer(store: Store, ask: OwnerRequest): Promise<Answer> {
  switch (ask.op) {
    case 'query':
      return { kind: 'json', value: await executeSavedQuery(store, getSavedQuery(String(ask.name)), ask.params, { subjectKeys: SubjectKeyEntries.parse(ask.subjectKeys ?? []) }) }
    case 'facts': {
      const request = FactsRequestSchema.parse(ask.request)
      // The independent mode's point is that the verifier computes its facts
      // itself: it asks for rows ('rows'), never for an owner's verdict.
      if (request.mode === 'independent') throw new ReadtrailError('USAGE', 'independent facts are computed by the verifying process; ask for rows')
      return { kind: 'json', value: await collectFacts(store, request) }
    }
    case 'evidence':
      return { kind: 'json', value: await answerEvidence(store, ask) }
    case 'rows':
      return readRows(store, ask)
    case 'query-tables':
      return { kind: 'json', value: await checkQueryTables(store) }
    default:
      throw new ReadtrailError('USAGE', `unknown owner request ${JSON.stringify((ask as { op?: unknown }).op)}`)
  }
}

async function readRows(store: Store, ask: { query: unknown; params: unknown; format: unknown }): Promise<Answer> {
  if (ask.format !== 'RowBinary' && ask.format !== 'JSONEachRow') throw new ReadtrailError('USAGE', 'owner reads are RowBinary or JSONEachRow')
  const read = resolveOwnerRead(store.database, ask.query, ask.params, ask.format)
  if (read.format === 'JSONEachRow') return { kind: 'json', value: await store.queryRows(read.sql, read.params, NO_CACHES) }
  const result = await store.client.exec({ query: read.sql, query_params: read.params, clickhouse_settings: NO_CACHES })
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of result.stream as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_ROWS_ANSWER_BYTES) throw new ReadtrailError('USAGE', `the ${read.name} read is larger than an owner answer may be (${MAX_ROWS_ANSWER_BYTES} bytes)`)
    chunks.push(chunk)
  }
  return { kind: 'rows', bytes: Buffer.concat(chunks, size) }
}

export interface OwnerApiOptions {
  /**
   * The checkpoint signing key. Every answer is signed with it, so askers,
   * who hold only the public key, can tell this process from an impostor
   * that planted its own socket and owner record.
   */
  key: Pick<SigningKey, 'privateKey'>
}

const HEADER = Object.freeze({ pid: 'x-readtrail-owner-pid', database: 'x-readtrail-owner-database', kind: 'x-readtrail-owner-kind', sig: 'x-readtrail-owner-sig' })

export async function serveOwnerApi(store: Store, dataDir: string, logger: Logger, options: OwnerApiOptions): Promise<() => Promise<void>> {
  const privateKey: KeyObject | undefined = options?.key?.privateKey
  // An unsigned owner would be refused by every asker: fail here, at start-up, instead.
  if (!privateKey || privateKey.type !== 'private') throw new ReadtrailError('USAGE', 'serveOwnerApi needs the checkpoint signing key to sign its answers')
  const path = canonicalSocketPath(dataDir)
  // Unix socket paths are limited to ~107 bytes on Linux.
  if (path === undefined || Buffer.byteLength(path) > 100) {
    logger.warn({ socket: path ?? ownerSocketPath(dataDir) }, 'data directory path too long for a Unix socket: other processes cannot query through this one')
    return async () => {}
  }
  rmSync(path, { force: true })
  const admission = createOwnerAdmission(OWNER_LIMITS)
  /** Signs and sends one answer, bound to the asker's nonce and the exact request bytes (by their digest). */
  const reply = (res: ServerResponse, nonce: unknown, requestDigest: Buffer, status: number, answer: Answer) => {
    const body = answer.kind === 'rows' ? answer.bytes : Buffer.from(JSON.stringify(status === 200 ? { result: answer.value } : answer.value), 'utf8')
    const fields: OwnerProofFields = {
      nonce: isNonce(nonce) ? nonce : '',
      socketPath: path,
      pid: process.pid,
      database: store.database,
      status,
      kind: answer.kind,
      requestDigest,
      responseDigest: digestOf(body),
    }
    res
      .writeHead(status, {
        'content-type': answer.kind === 'rows' ? 'application/octet-stream' : 'application/json',
        'content-length': body.length,
        [HEADER.pid]: String(process.pid),
        [HEADER.database]: encodeURIComponent(store.database),
        [HEADER.kind]: answer.kind,
        [HEADER.sig]: signOwnerAnswer(privateKey, fields),
      })
      .end(body)
  }
  const server = createServer((req, res) => {
    // Bounded before a byte of the body is read: its stated length decides
    // whether it fits, and the body may not run past it. readtrail's askers
    // always state one within the bound (checked before sending).
    const declared = declaredLength(req)
    if (declared === undefined || declared > OWNER_LIMITS.maxRequestBytes) {
      res.writeHead(declared === undefined ? 411 : 413, { connection: 'close' }).end()
      return
    }
    const release = admission.admit(declared)
    if (!release) {
      answerBusy(req, res, admission, reply)
      return
    }
    // The slot is held until the work is done, not only while the asker
    // listens: an asker that hangs up after sending must not free a slot
    // while the store still works for it, or hanging up would lift the bound.
    let answering = false
    let closed = false
    res.once('close', () => {
      closed = true
      if (!answering) release()
    })
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > declared) req.destroy()
      else chunks.push(c)
    })
    req.on('end', () => {
      answering = true
      void (async () => {
        const raw = Buffer.concat(chunks, size)
        chunks.length = 0
        let nonce: unknown
        let status = 200
        let answered: Answer
        try {
          const parsed = JSON.parse(raw.toString('utf8')) as { nonce?: unknown; ask?: OwnerRequest }
          nonce = parsed.nonce
          if (!isNonce(nonce)) throw new ReadtrailError('USAGE', 'owner requests carry a fresh 32-byte hex nonce')
          answered = await answer(store, parsed.ask as OwnerRequest)
        } catch (err) {
          status = 400
          const error = isReadtrailError(err) ? err.toJSON() : { code: 'USAGE', message: describeError(err) }
          answered = { kind: 'json', value: { error } }
        }
        answering = false
        if (closed) release()
        else reply(res, nonce, digestOf(raw), status, answered)
      })()
    })
  })
  server.maxConnections = OWNER_LIMITS.maxConnections
  server.headersTimeout = OWNER_LIMITS.headersTimeoutMs
  server.requestTimeout = OWNER_LIMITS.requestTimeoutMs
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

/** The request's stated body length; undefined when absent or not a plain non-negative integer. */
function declaredLength(req: IncomingMessage): number | undefined {
  const text = req.headers['content-length']
  if (text === undefined || !/^[0-9]{1,12}$/.test(text)) return undefined
  return Number(text)
}

/**
 * OWNER_BUSY, proved like any answer: the asker checks the signature over
 * its nonce and its request's digest before it believes even a refusal.
 * The body is streamed through SHA-256, never held: only its first bytes
 * are kept, where readtrail's askers put the nonce (`{"nonce":"…"`). The
 * connection stays open as after any answer (closing it straight after the
 * reply raced the asker's last write into EPIPE); idle ones still time out
 * and count against maxConnections.
 */
function answerBusy(
  req: IncomingMessage,
  res: ServerResponse,
  admission: OwnerAdmission,
  reply: (res: ServerResponse, nonce: unknown, requestDigest: Buffer, status: number, answer: Answer) => void,
): void {
  const digest = createHash('sha256')
  let head = Buffer.alloc(0)
  req.on('data', (c: Buffer) => {
    digest.update(c)
    if (head.length < NONCE_PREFIX_BYTES) head = Buffer.concat([head, c.subarray(0, NONCE_PREFIX_BYTES - head.length)])
  })
  req.on('end', () => {
    const nonce = /^\{"nonce":"([0-9a-f]{64})"/.exec(head.toString('latin1'))?.[1]
    const load = admission.load()
    const error = new ReadtrailError('OWNER_BUSY', `the store's owner is answering ${load.inFlight} requests (at most ${OWNER_LIMITS.maxInFlight}) holding ${load.bufferedBytes} request bytes (at most ${OWNER_LIMITS.maxBufferedBytes}); try again shortly`, {
      details: { in_flight: load.inFlight, max_in_flight: OWNER_LIMITS.maxInFlight, buffered_bytes: load.bufferedBytes, max_buffered_bytes: OWNER_LIMITS.maxBufferedBytes },
    })
    reply(res, nonce, digest.digest(), 503, { kind: 'json', value: { error: error.toJSON() } })
  })
}

/** `{"nonce":"` and 64 hex digits and the closing quote. */
const NONCE_PREFIX_BYTES = 75

/** Where the owner is and what proves it. */
export interface OwnerTarget {
  dataDir: string
  /** The database the asker means; an owner serving another is refused. */
  database: string
  /** The checkpoint PUBLIC key (SPKI PEM file) that checks the owner's signatures. */
  publicKeyPath: string
  /** Longest wait for an answer (the owner works before it sends a byte). @default 1_800_000 */
  timeoutMs?: number
}

/** A proved answer: its body, and whether it is JSON or raw rows. */
interface ProvedAnswer {
  status: number
  kind: 'json' | 'rows'
  body: Buffer
}

const untrusted = (message: string, details: Record<string, unknown>) => new ReadtrailError('OWNER_UNTRUSTED', message, { details })

/**
 * Sends one request to the owning process and proves its answer, in named
 * steps: find the owner record, load the trusted key, ask with a fresh nonce,
 * check the signature over (nonce, socket, pid, database, request, answer),
 * check the pid against the owner record and that it is alive, check (on
 * Linux) that the pid holds the socket. Any failed check throws
 * OWNER_UNTRUSTED and nothing the peer said is used. undefined when there is
 * no socket at all.
 */
function askOwner(target: OwnerTarget, ask: OwnerRequest): Promise<ProvedAnswer> | undefined {
  const socketPath = ownerSocketPath(target.dataDir)
  if (!existsSync(socketPath)) return undefined
  // Serialised once for every attempt; each carries a fresh nonce in front.
  const askJson = JSON.stringify(ask)
  const requestBytes = Buffer.byteLength(askJson, 'utf8') + NONCE_ENVELOPE_BYTES
  if (requestBytes > OWNER_LIMITS.maxRequestBytes) {
    return Promise.reject(
      new ReadtrailError('OWNER_REQUEST_TOO_LARGE', `the ${ask.op} request is ${requestBytes} bytes; the store's owner accepts at most ${OWNER_LIMITS.maxRequestBytes}`, {
        details: { op: ask.op, bytes: requestBytes, max_bytes: OWNER_LIMITS.maxRequestBytes },
      }),
    )
  }
  return (async () => {
    // A busy owner (OWNER_BUSY, status 503, proved like any answer) has done
    // nothing: wait for a slot, a fresh nonce each time, for a bounded while.
    const deadline = Date.now() + BUSY_WAIT_MS
    for (let delay = 50; ; delay = Math.min(delay * 2, 2000)) {
      const proved = await askOwnerOnce(target, askJson, socketPath)
      if (proved.status !== 503 || Date.now() + delay > deadline) return proved
      await new Promise((resolve) => setTimeout(resolve, delay + Math.floor(Math.random() * delay)))
    }
  })()
}

/** `{"nonce":"<64 hex>","ask":` and the closing brace. */
const NONCE_ENVELOPE_BYTES = 83

/** How long an asker waits for a busy owner before reporting OWNER_BUSY. */
const BUSY_WAIT_MS = 30_000

/** One request and the steps that prove its answer (see askOwner). */
function askOwnerOnce(target: OwnerTarget, askJson: string, socketPath: string): Promise<ProvedAnswer> {
  return (async () => {
    // Step: the owner record. Gone since the store said it was locked: the owner stopped.
    const record = readOwnerRecord(target.dataDir)
    const expectedPath = canonicalSocketPath(target.dataDir)
    if (!record || !expectedPath) throw unreachable(socketPath, new Error('no owner record'))
    // Step: the trusted key, from the configuration (never from the peer).
    const trusted = loadPublicKey(target.publicKeyPath)
    // Step: ask, with a nonce the answer must be bound to.
    const nonce = createNonce()
    // The nonce first: a busy owner finds it there without holding the body (answerBusy).
    const requestBody = Buffer.from(`{"nonce":${JSON.stringify(nonce)},"ask":${askJson}}`, 'utf8')
    const { res, body } = await send(socketPath, requestBody, target.timeoutMs ?? 1_800_000)
    // Step: the signature. Checked before anything in the answer is read.
    const pidText = header(res, HEADER.pid)
    const kind = header(res, HEADER.kind)
    const sig = header(res, HEADER.sig)
    let database: string | undefined
    try {
      database = decodeURIComponent(header(res, HEADER.database) ?? '')
    } catch {
      database = undefined
    }
    const pid = pidText !== undefined && /^[1-9][0-9]{0,9}$/.test(pidText) ? Number(pidText) : undefined
    const status = res.statusCode ?? 0
    const signed =
      pid !== undefined &&
      database !== undefined &&
      (kind === 'json' || kind === 'rows') &&
      sig !== undefined &&
      isOwnerAnswerSigned(trusted.publicKey, { nonce, socketPath: expectedPath, pid, database, status, kind, requestDigest: digestOf(requestBody), responseDigest: digestOf(body) }, sig)
    const details = { socket: socketPath, owner_pid: record.pid, key_id: trusted.keyId }
    if (!signed || pid === undefined || database === undefined || (kind !== 'json' && kind !== 'rows')) {
      throw untrusted(`the process answering on ${socketPath} did not prove it holds the checkpoint key ${trusted.keyId}; its answer was not used (an impostor owner, or a socket left by something that is not readtrail consume)`, details)
    }
    // Step: the pid. A real owner's answer relayed by another process names the real pid, which must be the recorded owner.
    if (pid !== record.pid || !isProcessAlive(pid)) {
      throw untrusted(`the answer on ${socketPath} is signed by process ${pid}, but the owner record names process ${record.pid}; its answer was not used`, { ...details, answer_pid: pid })
    }
    // Step: on Linux, the recorded owner holds the listening socket at this path.
    if (checkPeerHoldsSocket(pid, expectedPath) === 'not-held') {
      throw untrusted(`process ${pid} named by the owner record holds no socket bound at ${expectedPath}; its answer was not used`, details)
    }
    if (database !== target.database) {
      throw new ReadtrailError('STORE_SCHEMA_MISMATCH', `the process owning ${target.dataDir} serves database ${database}, not ${target.database}`, { details: { database, expected: target.database } })
    }
    return { status, kind, body }
  })()
}

function header(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name]
  return typeof value === 'string' ? value : undefined
}

function unreachable(socketPath: string, cause: Error): ReadtrailError {
  return new ReadtrailError('STORE_UNAVAILABLE', `cannot reach the owning readtrail process at ${socketPath}: ${cause.message}`, {
    cause,
    details: { unreachable: true },
  })
}

/** One request; the answer is read whole, bounded in size and time, before anyone looks at it. */
function send(socketPath: string, requestBody: Buffer, timeoutMs: number): Promise<{ res: IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path: '/', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': requestBody.length } },
      (res) => {
        const limit = res.headers[HEADER.kind] === 'rows' ? MAX_ROWS_ANSWER_BYTES : MAX_JSON_ANSWER_BYTES
        const declared = Number(res.headers['content-length'])
        // The owner always states the length of what it signed; an answer without one, or longer than allowed, is not read.
        const tooLarge = () =>
          new ReadtrailError('OWNER_UNTRUSTED', `the answer on ${socketPath} states no length, or one beyond an owner answer's ${limit} bytes, or runs past it; it was not used`, {
            details: { socket: socketPath },
          })
        if (res.headers['content-length'] === undefined || !Number.isSafeInteger(declared) || declared < 0 || declared > limit) {
          req.destroy()
          return reject(tooLarge())
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > declared) {
            req.destroy()
            reject(tooLarge())
          } else chunks.push(c)
        })
        res.on('error', (cause) => reject(unreachable(socketPath, cause)))
        res.on('end', () => resolve({ res, body: Buffer.concat(chunks, size) }))
      },
    )
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no complete answer within ${timeoutMs} ms`)))
    req.on('error', (cause) => reject(unreachable(socketPath, cause)))
    req.end(requestBody)
  })
}

/** Sends one request to the owning process and returns its proved result; its coded errors come back as they were. */
export function callOwner<T>(target: OwnerTarget, ask: OwnerRequest): Promise<T> | undefined {
  return askOwner(target, ask)?.then((answer) => {
    if (answer.kind !== 'json') throw new ReadtrailError('STORE_UNAVAILABLE', `the owner answered ${ask.op} with raw rows`)
    return jsonResult<T>(answer)
  })
}

/** One fixed row read through the owner (cli/owner-reads.ts): raw RowBinary bytes, proved like any answer. */
export async function readOwnerRows(target: OwnerTarget, query: string, params: Record<string, unknown>): Promise<Buffer> {
  const answer = await askOwner(target, { op: 'rows', query, params, format: 'RowBinary' })
  if (!answer) throw unreachable(ownerSocketPath(target.dataDir), new Error('no owner socket'))
  if (answer.kind === 'rows' && answer.status === 200) return answer.body
  // Refusals come back as JSON errors.
  return jsonResult<never>(answer)
}

/** A proved JSON answer: its result, or its coded error rethrown as it was. */
function jsonResult<T>(answer: ProvedAnswer): T {
  let reply: { result?: T; error?: { code: ReadtrailError['code']; message: string; retriable?: unknown; details?: Record<string, unknown> } }
  try {
    reply = JSON.parse(answer.body.toString('utf8')) as typeof reply
  } catch (cause) {
    throw new ReadtrailError('STORE_UNAVAILABLE', 'unreadable reply from the owning readtrail process', { cause })
  }
  // The answer is signed, so its retriable flag is the owner's own (OWNER_BUSY, STORE_UNAVAILABLE).
  if (reply.error) throw new ReadtrailError(reply.error.code, reply.error.message, { details: reply.error.details })
  return reply.result as T
}
