import { z } from 'zod'
import { LIMITS, MAX_LONG, PRINCIPAL_TYPES } from './access-event.js'

/**
 * An extraction-guard alert: a principal's reads of a table (or table group)
 * crossed a budget, and what the guard did about it. The TypeScript twin of
 * the AlertEvent record in schemas/avro/alert-batch.v1.avsc.
 *
 * `unchecked`: the shared budget store was unreachable and the table's
 * policy let the read through without a check (fail-open).
 */
export const ALERT_ACTIONS = ['alert', 'throttle', 'refuse', 'unchecked'] as const
export type AlertAction = (typeof ALERT_ACTIONS)[number]

const name = z.string().max(LIMITS.name)

export const AlertEvent = z
  .object({
    alert_id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a lowercase UUID'),
    occurred_at: z.number().int().min(0).max(MAX_LONG),
    environment: name,
    principal_id: z.string().min(1).max(LIMITS.name),
    principal_type: z.enum(PRINCIPAL_TYPES),
    db_name: name,
    table_name: z.string().min(1).max(LIMITS.name),
    budget: z.string().min(1).max(LIMITS.name),
    window_seconds: z.number().int().min(1).max(86_400),
    limit: z.number().int().min(0).max(MAX_LONG),
    observed: z.number().int().min(0).max(MAX_LONG),
    action: z.enum(ALERT_ACTIONS),
    read_id: z.union([z.literal(''), z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)]),
    records_in_read: z.number().int().min(0).max(MAX_LONG),
    detail: z.string().max(LIMITS.text),
    producer_seq: z.number().int().min(1).max(MAX_LONG),
  })
  .strict()
export type AlertEvent = z.output<typeof AlertEvent>
