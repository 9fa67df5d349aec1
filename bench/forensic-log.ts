import { ACCESS_LOG_COLUMNS, HASH_COLUMN } from '../store/access-log-columns.js'
import type { Store } from '../store/store.js'

/**
 * A month of reads shaped like the three breaches in SCENARIOS.md, generated
 * by ClickHouse itself (INSERT … SELECT FROM numbers) so 10M events take
 * minutes, not hours. The rows are not a hash chain: this is for timing
 * queries, not verify.
 *
 * - 2,000 staff accounts read five tables across three databases (registry,
 *   practice, firearms), mostly in Berlin working hours, 1–19 record ids per
 *   read (about 10 on average), from their own office IP, one session a day;
 *   3 % of their reads of practice.patients carry no purpose.
 * - One compromised account, clerk.marta, reads every one of the 705,000
 *   applicants in 14,100 reads of 50 sequential ids from 203.0.113.7 on the
 *   night of 27 November, 01:00–02:45 UTC.
 */
export const FORENSIC_LOG = Object.freeze({
  startUs: Date.UTC(2026, 10, 1) * 1000,
  days: 30,
  staff: 2000,
  scraper: 'clerk.marta',
  scraperIp: '203.0.113.7',
  scraperReads: 14_100,
  scraperIdsPerRead: 50,
  scraperStartUs: Date.UTC(2026, 10, 27, 1) * 1000,
  scraperSpacingUs: 450_000,
  firstApplicant: 100_000,
  patients: 5_000_000,
})

const F = FORENSIC_LOG

/**
 * One SQL expression per access_log column over `number`, in table order.
 * Events are numbered in time order, as the chain writer appends them: seq
 * follows occurred_at. Staff events fill each day with 88 % of them between
 * 06:00 and 17:00 UTC (07:00–18:00 Berlin); the scraper's 14,100 events are a
 * block of numbers inserted at 27 November 01:00 UTC.
 */
function generatedColumns(events: number): Record<string, string> {
  const staffEvents = events - F.scraperReads
  const perDay = staffEvents / F.days
  const scraperFrom = Math.floor(26 * perDay + (1 / 6) * 0.06 * perDay)
  const isScraper = `(number >= ${scraperFrom} AND number < ${scraperFrom + F.scraperReads})`
  const k = `(number - ${scraperFrom})`
  // The staff event's own index, with the scraper block taken out.
  const s = `if(number < ${scraperFrom}, number, number - ${F.scraperReads})`
  const f = `((${s} % ${perDay}) / ${perDay})`
  const secondOfDay = `multiIf(${f} < 0.06, ${f} / 0.06 * 21600, ${f} < 0.94, 21600 + (${f} - 0.06) / 0.88 * 39600, 61200 + (${f} - 0.94) / 0.06 * 25200)`
  const staffUs = `(${F.startUs} + toInt64(floor(${s} / ${perDay})) * 86400000000 + toInt64(${secondOfDay} * 1000000))`
  const staff = `concat('staff-', leftPad(toString(cityHash64(number, 'p') % ${F.staff}), 4, '0'))`
  const day = `intDiv(${s}, ${Math.ceil(perDay)})`
  const scraperUs = `(${F.scraperStartUs} + ${k} * ${F.scraperSpacingUs})`
  const table = `['applicants', 'patients', 'treatments', 'owners', 'addresses'][cityHash64(number, 't') % 5 + 1]`
  const ids = `1 + cityHash64(number, 'n') % 19`
  const staffIds = `multiIf(
      ${table} = 'applicants', arrayMap(i -> toString(${F.firstApplicant} + cityHash64(number, i) % 705000), range(${ids})),
      ${table} = 'patients', arrayMap(i -> toString(cityHash64(number, i) % ${F.patients}), range(${ids})),
      ${table} = 'treatments', arrayMap(i -> concat('["', toString(cityHash64(number, i) % ${F.patients}), '","', toString(cityHash64(number, i, 'x') % 40), '"]'), range(${ids})),
      ${table} = 'owners', arrayMap(i -> toString(cityHash64(number, i) % 300000), range(${ids})),
      arrayMap(i -> toString(cityHash64(number, i) % 400000), range(${ids})))`
  const scraperIds = `arrayMap(i -> toString(${F.firstApplicant} + ${k} * ${F.scraperIdsPerRead} + i), range(${F.scraperIdsPerRead}))`
  return {
    prev_hash: "toFixedString(unhex(repeat('00', 32)), 32)",
    chain_id: "concat('readtrail.access/', toString(number % 3))",
    seq: 'intDiv(number, 3) + 1',
    kafka_offset: 'intDiv(number, 3)',
    message_index: '0',
    message_events: '1',
    ingested_at: `fromUnixTimestamp64Micro(toInt64(if(${isScraper}, ${scraperUs}, ${staffUs}) + 20000), 'UTC')`,
    schema_version: '1',
    key_id: "''",
    event_id: 'generateUUIDv4(number)',
    read_id: 'generateUUIDv4(number + 1)',
    part_index: '0',
    part_count: '1',
    occurred_at: `fromUnixTimestamp64Micro(toInt64(if(${isScraper}, ${scraperUs}, ${staffUs})), 'UTC')`,
    principal_id: `if(${isScraper}, '${F.scraper}', ${staff})`,
    principal_type: "'user'",
    on_behalf_of: 'NULL',
    session_hash: `if(${isScraper}, SHA256('marta-stolen-token'), SHA256(concat(${staff}, toString(${day}))))`,
    client_ip: `if(${isScraper}, toIPv6('${F.scraperIp}'), toIPv6(concat('10.20.', toString(cityHash64(${staff}) % 250), '.', toString(cityHash64(${staff}, 1) % 250))))`,
    service: `if(${isScraper}, 'admissions-portal', ['admissions-portal', 'practice-app', 'firearms-portal', 'practice-app', 'firearms-portal'][cityHash64(number, 't') % 5 + 1])`,
    environment: "'prod'",
    action: "'read'",
    db_name: `if(${isScraper}, 'registry', ['registry', 'practice', 'practice', 'firearms', 'firearms'][cityHash64(number, 't') % 5 + 1])`,
    table_name: `if(${isScraper}, 'applicants', ${table})`,
    columns: `if(${isScraper} OR ${table} = 'applicants', ['id', 'full_name', 'birth_date', 'phone', 'postal_address', 'email'],
      multiIf(${table} = 'patients', if(cityHash64(number, 'c') % 10 = 0, ['id', 'full_name', 'phone', 'religion', 'sexual_orientation'], ['id', 'full_name', 'phone']),
              ${table} = 'treatments', ['patient_id', 'n', 'diagnosis'],
              ${table} = 'owners', ['id', 'full_name', 'licence_no'],
              ['id', 'street', 'city']))`,
    record_ids: `if(${isScraper}, ${scraperIds}, ${staffIds})`,
    record_ids_complete: 'true',
    row_count: `if(${isScraper}, ${F.scraperIdsPerRead}, ${ids})`,
    query_fingerprint: "'SELECT … FROM t WHERE id IN (?+)'",
    db_session: "''",
    statement_digest: "''",
    purpose: `if(${isScraper}, NULL, if(${table} = 'patients' AND cityHash64(number, 'q') % 100 < 3, NULL, 'care'))`,
    trace_id: 'NULL',
    outcome: "'success'",
    producer_id: `concat('app-', toString(number % 4))`,
    producer_seq: 'intDiv(number, 4) + 1',
    hash: "toFixedString(unhex(repeat('00', 32)), 32)",
  }
}

/** Inserts `events` generated events into access_log (its views fill the query tables). */
export async function generateForensicLog(store: Store, events: number, progress: (done: number) => void = () => {}): Promise<void> {
  const generated = generatedColumns(events)
  const columns = [...ACCESS_LOG_COLUMNS.map((c) => c.name), HASH_COLUMN.name]
  const select = columns.map((c) => `${generated[c]!} AS ${c}`).join(',\n  ')
  const chunk = 1_000_000
  for (let from = 0; from < events; from += chunk) {
    const count = Math.min(chunk, events - from)
    await store.client.command({ query: `INSERT INTO ${store.table('access_log')} SELECT ${select} FROM numbers(${from}, ${count})` })
    progress(from + count)
  }
}
