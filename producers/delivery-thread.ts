import { Worker } from 'node:worker_threads'
import pino from 'pino'
import { componentLogger, type Logger } from '../common/logger.js'
import type { Delivery, DeliveryStats, Durability } from './delivery.js'
import { deserializeError, packBatch, type DeliveryThreadConfig, type DeliveryThreadData, type FromDeliveryThread, type ToDeliveryThread } from './delivery-protocol.js'

/**
 * Logs a line of the delivery thread on the application's logger, at its
 * level, with its fields (the thread's component among them: `logger` is the
 * application's own, which binds none of readtrail's).
 */
function relog(logger: Logger, line: string): void {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line) as Record<string, unknown>
  } catch {
    return
  }
  const { level, msg, time: _time, pid: _pid, hostname: _hostname, ...fields } = entry
  const label = typeof level === 'number' ? pino.levels.labels[level] : undefined
  if (label === undefined || !(label in pino.levels.values) || label === 'silent') return
  if ('component' in logger.bindings() && 'component' in fields) {
    fields['subcomponent'] = fields['component']
    delete fields['component']
  }
  ;(logger[label as pino.Level] as pino.LogFn)(fields, typeof msg === 'string' ? msg : '')
}

/**
 * Runs the delivery (kafkajs and the outbox) on a worker thread and speaks
 * to it by batches, not reads: the application's event loop pays one
 * message post per batch instead of Kafka's per-record framing, CRC and
 * compression and the garbage they leave. Same guarantees as in-thread
 * delivery: `send` resolves only once the batch is acknowledged or fsync'd.
 * `logger` is the application's own: the thread's lines carry their component.
 */
export async function startDeliveryThread(config: DeliveryThreadConfig, logger: Logger): Promise<Delivery> {
  const data: DeliveryThreadData = { config, logLevel: logger.level }
  const worker = startWorker(data)
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  let nextId = 1
  let stats: DeliveryStats = { acked: 0, outboxed: 0, replayed: 0, failed: 0 }
  let pending = 0
  let exited: Error | undefined

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (msg: FromDeliveryThread) => {
      if (msg.type === 'ready') {
        stats = msg.stats
        pending = msg.pending
        resolve()
      } else if (msg.type === 'log') {
        relog(logger, msg.line)
      } else if (msg.type === 'failed') {
        reject(deserializeError(msg.error))
      } else {
        stats = msg.stats
        pending = msg.pending
        const w = waiting.get(msg.id)
        waiting.delete(msg.id)
        if (msg.error) w?.reject(deserializeError(msg.error))
        else w?.resolve(msg.value)
      }
    })
    worker.on('error', (err) => {
      componentLogger(logger, 'audit-producer').error({ err }, 'delivery thread failed')
      reject(err)
    })
    worker.on('exit', (code) => {
      exited = new Error(`the delivery thread exited (code ${code})`)
      for (const w of waiting.values()) w.reject(exited)
      waiting.clear()
      reject(exited)
    })
  })
  await ready

  function call<T>(msg: Omit<ToDeliveryThread, 'id'> & { type: ToDeliveryThread['type'] }, transfer: ArrayBuffer[] = []): Promise<T> {
    if (exited) return Promise.reject(exited)
    const id = nextId++
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      worker.postMessage({ ...msg, id }, transfer)
    })
  }

  return {
    connect: () => call<void>({ type: 'connect' }),
    send(messages) {
      const { batch, transfer } = packBatch(messages)
      return call<Durability>({ type: 'send', batch } as Omit<ToDeliveryThread, 'id'>, transfer)
    },
    pending: () => pending,
    drained: (timeoutMs) => call<boolean>({ type: 'drained', timeoutMs } as Omit<ToDeliveryThread, 'id'>),
    stats: () => ({ ...stats }),
    async close() {
      if (exited) return
      await call<void>({ type: 'close' })
      await worker.terminate()
    },
  }
}

/**
 * From compiled output the worker is plain JavaScript. From TypeScript
 * sources (tests, tsx) Node 20 does not give a worker the parent's loader:
 * a small script registers tsx in the worker first (tsx is a
 * devDependency; only source runs need it).
 */
function startWorker(workerData: DeliveryThreadData): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./delivery-worker.js', import.meta.url), { workerData })
  const entry = new URL('./delivery-worker.ts', import.meta.url).href
  const tsx = import.meta.resolve('tsx/esm/api')
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}) })`
  return new Worker(boot, { eval: true, workerData })
}
