import { z } from 'zod'
import { ALERT_ACTIONS } from '../schemas/alert-event.js'
import { ALERT_TABLE } from '../store/side-tables.js'
import { defineQuery } from './saved-query.js'
import { bindWindow, eventSources, fromBeforeTo, limit, LIMIT_SQL, list, principalId, tableName, window } from './params.js'

export interface AlertRow {
  occurred_at: string
  action: string
  principal_id: string
  principal_type: string
  db_name: string
  table_name: string
  budget: string
  window_seconds: number
  budget_limit: number
  observed: number
  records_in_read: number
  read_id: string
  detail: string
  service: string
  environment: string
  alert_id: string
  chain_id: string
  seq: number
}

const Params = z
  .object({
    ...window,
    principal: principalId.optional(),
    table: tableName.optional(),
    action: list(z.enum(ALERT_ACTIONS), ALERT_ACTIONS.length).default([]),
    limit: limit(1000),
  })
  .strict()
  .superRefine(fromBeforeTo)

/**
 * A table as the guard named it (`db_name`, `table_name`) matched however a
 * user writes it: `applicants`, `registry.applicants`, or the last parts of
 * a schema-qualified `public.patients`. Absent filters are bound as '' or
 * [] and drop out.
 */
const WHERE = `occurred_at >= {from:DateTime64(6, 'UTC')} AND occurred_at < {to:DateTime64(6, 'UTC')}
      AND ({principal:String} = '' OR principal_id = {principal:String})
      AND ({table:String} = '' OR table_name = {table:String} OR concat(db_name, '.', table_name) = {table:String}
           OR endsWith(table_name, concat('.', {table:String})) OR endsWith(concat(db_name, '.', table_name), concat('.', {table:String})))
      AND (empty({actions:Array(String)}) OR has({actions:Array(String)}, toString(action)))`

/**
 * What the extraction guard did, newest last: each time a principal's reads
 * crossed a budget (alert, throttle, refuse), and each read it let through
 * unchecked because the budget store was unreachable.
 */
export const alerts = defineQuery<typeof Params, AlertRow>({
  name: 'alerts',
  description: 'Extraction-guard alerts: which principal crossed which budget on which table, what the guard did (alert, throttle, refuse, unchecked).',
  params: Params,
  paramHelp: {
    from: 'window start (ISO 8601, inclusive; default: the beginning)',
    to: 'window end (exclusive; default: now and after)',
    principal: 'only this principal',
    table: 'only this table: applicants, registry.applicants, public.patients',
    action: `only these actions, comma-separated: ${ALERT_ACTIONS.join(', ')}`,
    limit: 'alerts to return (default 1000, 0 = all)',
  },
  columns: ['occurred_at', 'action', 'principal_id', 'principal_type', 'db_name', 'table_name', 'budget', 'window_seconds', 'budget_limit', 'observed', 'records_in_read', 'read_id', 'detail', 'service', 'environment', 'alert_id', 'chain_id', 'seq'],
  sql: (store) => `
    SELECT occurred_at, toString(action) AS action, toString(principal_id) AS principal_id, toString(principal_type) AS principal_type,
           toString(db_name) AS db_name, toString(table_name) AS table_name, toString(budget) AS budget, window_seconds, budget_limit, observed,
           records_in_read, read_id, detail, toString(service) AS service, toString(environment) AS environment, toString(alert_id) AS alert_id,
           toString(chain_id) AS chain_id, seq
    FROM ${store.table(ALERT_TABLE.table)}
    WHERE ${WHERE}
    ORDER BY occurred_at, chain_id, seq
    ${LIMIT_SQL}`,
  sourcesSql: (store) => eventSources(store.table(ALERT_TABLE.table), WHERE),
  // Read from alert_log itself: nothing derived to re-check.
  checks: () => [],
  bind: (p) => ({ ...bindWindow(p), principal: p.principal ?? '', table: p.table ?? '', actions: p.action }),
})
