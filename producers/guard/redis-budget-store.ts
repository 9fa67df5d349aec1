import { createHash } from 'node:crypto'
import type { createClient } from '@redis/client'
import { describeError } from '../../common/errors.js'
import type { Logger } from '../../common/logger.js'
import { BudgetStoreDown, WINDOWS, type BudgetStore, type TakeRequest, type TakeResult, type WindowSeconds } from './budget-store.js'
import type { RedisStoreConfig } from './guard-config.js'

/**
 * The sliding-window rule of producers/guard/sliding-window.ts, run in Redis
 * as one script so that check and count are one atomic step for every
 * instance: two pods cannot both see room for the last records.
 *
 * KEYS[1]: the principal's counter for one budget, a hash of
 * "<window seconds>:<bucket>" → records.
 * ARGV: cost, force (1|0), then per window: seconds, bucket ms, buckets, limit.
 * Returns {taken, over window seconds (0: none), limit, observed, retry ms (-1: never)}.
 *
 * The clock is Redis's (TIME), not the callers': instances whose clocks
 * disagree still count into the same buckets, and a pod with a skewed clock
 * cannot open a fresh window for itself.
 */
export const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local force = ARGV[2] == '1'
local windows = {}
local longest = 0
for i = 3, #ARGV, 4 do
  local w = { seconds = ARGV[i], g = tonumber(ARGV[i + 1]), n = tonumber(ARGV[i + 2]), limit = tonumber(ARGV[i + 3]), sum = 0, buckets = {} }
  w.cur = math.floor(now / w.g)
  windows[ARGV[i]] = w
  windows[#windows + 1] = w
  if w.g * (w.n + 1) > longest then longest = w.g * (w.n + 1) end
end
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local sep = string.find(fields[i], ':', 1, true)
  local w = sep and windows[string.sub(fields[i], 1, sep - 1)]
  local bucket = sep and tonumber(string.sub(fields[i], sep + 1))
  if w == nil or bucket == nil or bucket < w.cur - w.n then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    local c = tonumber(fields[i + 1])
    w.sum = w.sum + c
    w.buckets[#w.buckets + 1] = { bucket, c }
  end
end
local over = nil
local wait = 0
for _, w in ipairs(windows) do
  if w.sum + cost > w.limit then
    if over == nil then over = w end
    if cost > w.limit then
      wait = -1
    elseif wait >= 0 then
      table.sort(w.buckets, function(a, b) return a[1] < b[1] end)
      local left = w.sum
      for _, b in ipairs(w.buckets) do
        left = left - b[2]
        if left + cost <= w.limit then
          local ms = (b[1] + w.n + 1) * w.g - now
          if ms > wait then wait = ms end
          break
        end
      end
    end
  end
end
local taken = over == nil or force
if taken and cost > 0 then
  for _, w in ipairs(windows) do redis.call('HINCRBY', KEYS[1], w.seconds .. ':' .. w.cur, cost) end
  redis.call('PEXPIRE', KEYS[1], longest)
end
if over == nil then return { 1, 0, 0, 0, 0 } end
return { taken and 1 or 0, tonumber(over.seconds), over.limit, over.sum + cost, taken and 0 or wait }
`

export const TAKE_SCRIPT_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex')

export interface RedisBudgetStoreOptions {
  logger: Logger
}

/**
 * Budgets shared by every instance through one Redis. Every call is bounded
 * by `timeoutMs` and at most `maxInFlight` wait at once: a hung or
 * unreachable Redis turns into BudgetStoreDown within the bound (the
 * budget's onStoreDown policy decides), never into a hung read. Commands are
 * not queued while disconnected: they fail at once, and the client
 * reconnects in the background.
 */
export function createRedisBudgetStore(config: RedisStoreConfig, options: RedisBudgetStoreOptions): BudgetStore {
  const log = options.logger
  let inFlight = 0
  let closed = false
  let lastError: string | undefined
  let starting = true
  const connectTimeoutMs = Math.max(1000, config.timeoutMs)
  // Reads made while the first connection attempt is under way wait for its outcome (still within timeoutMs).
  let startWaiters: (() => void)[] = []
  const wakeStarters = () => {
    starting = false
    const waiters = startWaiters
    startWaiters = []
    for (const w of waiters) w()
  }
  // Loaded only by an application that counts budgets in Redis: importing
  // node-redis costs ~0.2 s of start-up, which every other SDK user would pay.
  let client: ReturnType<typeof open> | undefined
  void import('@redis/client').then(
    (redis) => {
      if (closed) return wakeStarters()
      client = open(redis.createClient)
    },
    (err: unknown) => {
      log.error({ reason: describeError(err) }, 'guard: cannot load @redis/client')
      wakeStarters()
    },
  )

  function open(create: typeof createClient) {
    const c = create({
      url: config.url,
      disableOfflineQueue: true,
      commandsQueueMaxLength: config.maxInFlight,
      socket: {
        connectTimeout: connectTimeoutMs,
        // Back off to 2 s at most: a Redis that comes back is used again within seconds.
        reconnectStrategy: (retries: number) => Math.min(2000, 50 * 2 ** Math.min(retries, 6)),
      },
    })
    // node-redis emits 'error' on every failed (re)connection; without a
    // listener that would crash the application.
    c.on('error', (err: unknown) => {
      const reason = describeError(err)
      wakeStarters()
      if (reason !== lastError) log.warn({ reason }, 'guard: Redis error (reads of budgeted tables follow their onStoreDown policy until it answers)')
      lastError = reason
    })
    c.on('ready', () => {
      wakeStarters()
      if (lastError !== undefined) log.info('guard: Redis answers again')
      lastError = undefined
    })
    // The application decides when it exits, not a budget counter's socket.
    c.connect().then(
      () => c.unref(),
      (err: unknown) => log.warn({ reason: describeError(err) }, 'guard: cannot connect to Redis'),
    )
    return c
  }

  function bounded<T>(ms: number, work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BudgetStoreDown(`Redis did not answer within ${ms} ms`)), ms)
      work().then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (err: unknown) => {
          clearTimeout(timer)
          reject(err instanceof BudgetStoreDown ? err : new BudgetStoreDown(`Redis: ${describeError(err)}`, { cause: err }))
        },
      )
    })
  }

  async function run(request: TakeRequest): Promise<unknown> {
    // Before the first connection attempt ends, wait for it (within the
    // bound) instead of failing the first reads at start-up. Later, a lost
    // connection fails at once: nothing piles up behind a dead socket.
    if (!client?.isReady && starting) await new Promise<void>((resolve) => startWaiters.push(resolve))
    const ready = client
    if (!ready?.isReady) throw new BudgetStoreDown('Redis is not connected')
    const args = [String(request.cost), request.force ? '1' : '0']
    for (const { windowSeconds, limit } of request.limits) {
      const w = WINDOWS[windowSeconds]
      args.push(String(windowSeconds), String(w.bucketMs), String(w.buckets), String(limit))
    }
    try {
      return await ready.sendCommand(['EVALSHA', TAKE_SCRIPT_SHA, '1', request.key, ...args])
    } catch (err) {
      // First use, or Redis restarted and lost its script cache.
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
      return await ready.sendCommand(['EVAL', TAKE_SCRIPT, '1', request.key, ...args])
    }
  }

  return Object.freeze({
    kind: 'redis' as const,
    async take(request: TakeRequest): Promise<TakeResult> {
      if (closed) throw new BudgetStoreDown('the guard is closed')
      if (inFlight >= config.maxInFlight) throw new BudgetStoreDown(`${inFlight} budget checks already wait on Redis (maxInFlight)`)
      inFlight += 1
      try {
        // The first reads after start-up also wait for the client to load and
        // connect, at most its connect timeout more; every later one, timeoutMs.
        return parseReply(await bounded(starting ? connectTimeoutMs + config.timeoutMs : config.timeoutMs, () => run(request)))
      } finally {
        inFlight -= 1
      }
    },
    async close() {
      if (closed) return
      closed = true
      wakeStarters()
      // A client still trying to connect (Redis down) is stopped, not waited for: that wait has no end.
      const c = client
      if (c?.isReady) await c.close().catch(() => c.destroy())
      else if (c?.isOpen) c.destroy()
    },
  })
}

/** The script's answer, checked: a Redis that answers anything else is treated as down, not trusted. */
function parseReply(reply: unknown): TakeResult {
  if (!Array.isArray(reply) || reply.length !== 5 || !reply.every((v) => typeof v === 'number' && Number.isSafeInteger(v))) {
    throw new BudgetStoreDown('Redis answered the budget script with something else than 5 integers')
  }
  const [taken, seconds, limit, observed, wait] = reply as number[]
  const over = seconds === 0 ? undefined : { windowSeconds: (seconds === 60 ? 60 : 3600) as WindowSeconds, limit: limit!, observed: observed! }
  return { taken: taken === 1, over, retryAfterMs: wait === -1 ? Number.POSITIVE_INFINITY : wait! }
}
