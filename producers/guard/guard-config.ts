import { z } from 'zod'
import { LIMITS, PRINCIPAL_TYPES } from '../../schemas/access-event.js'

const name = z.string().min(1).max(LIMITS.name)

/** What the guard does to a read that would take its principal past a budget. */
export const GUARD_ACTIONS = ['alert', 'throttle', 'refuse'] as const
export type GuardAction = (typeof GUARD_ACTIONS)[number]

/** What a read of a budgeted table does when its budget cannot be checked (Redis unreachable or slow). */
export const STORE_DOWN_POLICIES = ['fail-open', 'fail-closed'] as const
export type StoreDownPolicy = (typeof STORE_DOWN_POLICIES)[number]

// Far more than any person reads, far less than 2^53: a sum of counts in
// Lua (doubles) and in JS stays exact.
const MAX_RECORDS_PER_WINDOW = 1_000_000_000

const count = z.number().int().min(0).max(MAX_RECORDS_PER_WINDOW)

/** Records one principal of a type may read in each window; an absent window is not limited. */
export const WindowLimits = z
  .object({
    /** Records in any 60 s. */
    perMinute: count.optional(),
    /** Records in any 3600 s. */
    perHour: count.optional(),
  })
  .strict()
  .refine((l) => l.perMinute !== undefined || l.perHour !== undefined, 'give perMinute, perHour or both')
  .refine((l) => l.perMinute === undefined || l.perHour === undefined || l.perMinute <= l.perHour, { message: 'perMinute cannot be more than perHour', path: ['perMinute'] })
export type WindowLimits = z.output<typeof WindowLimits>

export const Budget = z
  .object({
    /** The tables whose records count against this budget, as named in the hook's `tables`. */
    tables: z.array(name).min(1).max(1024),
    /**
     * Limits per principal type; a type not listed is not limited by this
     * budget. Anonymous requests are type `system` and counted per client IP.
     */
    limits: z
      .object(Object.fromEntries(PRINCIPAL_TYPES.map((t) => [t, WindowLimits.optional()])) as Record<(typeof PRINCIPAL_TYPES)[number], z.ZodOptional<typeof WindowLimits>>)
      .strict()
      .refine((l) => Object.values(l).some((v) => v !== undefined), 'limit at least one principal type (user, service, system)'),
    /**
     * `alert`: the read goes on and an alert is published. `throttle`: the
     * read waits (up to the guard's `throttleMaxMs`) until the window has
     * room, then goes on; still over at the bound, it is refused like
     * `refuse`. `refuse`: EXTRACTION_LIMIT, no rows. @default 'refuse'
     */
    action: z.enum(GUARD_ACTIONS).default('refuse'),
    /**
     * When the budget store does not answer: `fail-open` lets the read
     * through unchecked (counted, and an `unchecked` alert at a bounded
     * rate), `fail-closed` refuses it with GUARD_UNAVAILABLE. Set per budget:
     * a budget of one table is a per-table policy. @default 'fail-open'
     */
    onStoreDown: z.enum(STORE_DOWN_POLICIES).default('fail-open'),
  })
  .strict()
export type Budget = z.output<typeof Budget>

export const RedisStoreConfig = z
  .object({
    /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
    url: z
      .string()
      .max(2048)
      .refine((u) => /^rediss?:\/\//.test(u) && URL.canParse(u), 'a redis:// or rediss:// URL'),
    /**
     * Prefix of every key the guard writes; each key is the prefix and a
     * SHA-256 of the budget and principal, so a principal id cannot reach
     * another key. @default 'readtrail:guard:'
     */
    keyPrefix: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9:._-]+$/, 'letters, digits and : . _ - only (no braces: the guard adds its own cluster hash tag)')
      .default('readtrail:guard:'),
    /** Longest a read waits for Redis before the budget's onStoreDown policy applies. @default 50 */
    timeoutMs: z.number().int().min(1).max(10_000).default(50),
    /** Checks waiting on Redis at once; more go straight to onStoreDown, so a hung Redis cannot queue reads without bound. @default 1000 */
    maxInFlight: z.number().int().min(1).max(100_000).default(1000),
  })
  .strict()
export type RedisStoreConfig = z.output<typeof RedisStoreConfig>

/** The extraction guard: per-principal budgets enforced before a hooked read's rows reach the caller. */
export const GuardConfig = z
  .object({
    /** Budgets by name (the name alerts carry). */
    budgets: z.record(name, Budget).refine((b) => Object.keys(b).length > 0, 'name at least one budget'),
    /** Principals no budget applies to (batch services), by type and id. */
    allow: z
      .array(z.object({ id: name, type: z.enum(PRINCIPAL_TYPES).default('service') }).strict())
      .max(10_000)
      .default([]),
    /** Longest a throttled read waits for room in its window. @default 2000 */
    throttleMaxMs: z.number().int().min(0).max(60_000).default(2000),
    /**
     * Budgets shared by every instance through Redis; without it each
     * process counts alone (in-process, a single instance's budget). @default in-process
     */
    redis: RedisStoreConfig.optional(),
    /**
     * At most one alert per principal, budget, window and action in this
     * interval (the next one says how many it stands for); every denied read
     * is still recorded on its own. @default 60000
     */
    alertIntervalMs: z.number().int().min(0).max(3_600_000).default(60_000),
    /** In-process store: most principals counted at once; past it a new principal's read is treated as unchecked (onStoreDown). @default 100000 */
    maxPrincipals: z.number().int().min(1).max(10_000_000).default(100_000),
  })
  .strict()
export type GuardConfig = z.output<typeof GuardConfig>
export type GuardConfigInput = z.input<typeof GuardConfig>
