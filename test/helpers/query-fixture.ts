import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { emptyChain, linkEntries, type ChainHead } from '../../consumers/chain.js'
import { createRandom } from '../../demo/applicants.js'
import type { ChainSource } from '../../queries/provenance.js'
import type { QueryContext } from '../../queries/saved-query.js'
import { SubjectKeysText, type SubjectKeys } from '../../queries/subject-keys.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import type { Store } from '../../store/store.js'
import { openTestStore } from './store.js'
import { isoToMicros } from './workload.js'

/**
 * A deterministic access log around the three breaches of SCENARIOS.md, for
 * checking every saved query against answers computed here, in TypeScript,
 * from the events themselves (the "replay" functions below).
 *
 * Ten days, 2026-03-23 (Mon) to 2026-04-01 (Wed), across the change to
 * summer time in Berlin (2026-03-29 01:00 UTC), three chains:
 * - registry.applicants: clerks by day; clerk.marta scraping at night from
 *   203.0.113.7 (with one burst minute); svc.reporting with a steady history
 *   and one hour twenty times its normal; a 3-part export by svc.archive; a
 *   principal literally named `x' OR 1=1 --`; archive.applicants shares the
 *   table name but has no subject key.
 * - practice.patients (id) and practice.treatments (["<patient_id>","<n>"]):
 *   doctors, nurses, reception with and without purpose; a vendor account
 *   reading religion and sexual orientation at night over IPv6.
 * - firearms.owners (id), firearms.licences (["<licence_no>","<owner_id>"],
 *   subject second) and firearms.items (no subject key): officers by day, a
 *   public portal with a session per citizen, and a scraper on that portal
 *   token from IPv6, ending in a 2-part bulk read.
 */

export interface StoredEvent extends AccessEvent {
  chain_id: string
  seq: number
}

export const CHAINS = ['audit.reads/0', 'audit.reads/1', 'audit.reads/2'] as const

export const SUBJECT_KEYS_TEXT = 'registry.applicants=id,practice.patients=id,practice.treatments=key1,firearms.owners=id,firearms.licences=key2'
export const SUBJECT_KEYS: SubjectKeys = SubjectKeysText.parse(SUBJECT_KEYS_TEXT)
export const SUBJECT_CONTEXT: QueryContext = Object.freeze({ subjectKeys: SUBJECT_KEYS })

export const P = Object.freeze({
  anna: 'clerk.anna',
  luca: 'clerk.luca',
  marta: 'clerk.marta',
  reporting: 'svc.reporting',
  mailer: 'svc.mailer',
  archive: 'svc.archive',
  hostile: "x' OR 1=1 --",
  weber: 'dr.weber',
  kim: 'nurse.kim',
  ali: 'reception.ali',
  billing: 'svc.billing',
  vendor: 'vendor.support',
  rossi: 'officer.rossi',
  portal: 'portal.public',
  contractor: 'tmp.contractor',
})

export const IP = Object.freeze({
  martaNight: '203.0.113.7',
  vendorNight: '2001:db8:4::66',
  scraper: '2001:db8:dead::beef',
  /** The scraper's session, seen from a second address. */
  scraperAlt: '2001:db8:dead::b0b',
  contractor: '192.0.2.99',
})

/** A session as the SDK stores it: 32 bytes of HMAC, here a hash of a label. */
export function sessionOf(label: string): Buffer {
  return createHash('sha256').update(`readtrail-query-fixture:${label}`).digest()
}

export const SESSION = Object.freeze({
  martaNight: sessionOf('marta-night'),
  vendorNight: sessionOf('vendor-night'),
  scrape1: sessionOf('scrape-1'),
  /** A second scraper session, only ever used from IP.scraper. */
  scrape2: sessionOf('scrape-2'),
})

/** Moments the tests ask about, as ISO text (microsecond precision where it matters). */
export const AT = Object.freeze({
  /** 07:59:59.999999 / 08:00 Berlin, winter (UTC+1), Thursday. */
  winterBeforeWork: '2026-03-26T06:59:59.999999Z',
  winterWorkStarts: '2026-03-26T07:00:00.000000Z',
  winterLastWorkMicro: '2026-03-26T16:59:59.999999Z',
  winterWorkEnds: '2026-03-26T17:00:00.000000Z',
  /** 01:59:59 CET, then (clocks jump) 03:00 CEST on Sunday 2026-03-29. */
  dstBeforeJump: '2026-03-29T00:59:59.999999Z',
  dstAfterJump: '2026-03-29T01:00:00.000000Z',
  /** 07:59:59.999999 / 08:00 / 08:30 Berlin, summer (UTC+2), Monday: 06:30 UTC is 07:30 with a fixed +1. */
  summerBeforeWork: '2026-03-30T05:59:59.999999Z',
  summerWorkStarts: '2026-03-30T06:00:00.000000Z',
  summerEarlyWork: '2026-03-30T06:30:00.000000Z',
  /** 09:29:59.999999 / 09:30 in Kolkata (UTC+5:30), Tuesday. */
  kolkataBefore: '2026-03-31T03:59:59.999999Z',
  kolkataAt: '2026-03-31T04:00:00.000000Z',
  archiveExport: '2026-03-25T02:00:00.000000Z',
  martaBurstMinute: '2026-03-31T01:14:00Z',
  reportingSpikeHour: '2026-03-31T10:00:00Z',
  contractorMinute: '2026-03-31T14:20:00Z',
  scrapeStart: '2026-03-31T19:00:00Z',
  /** The scraper's 2-part bulk read: windows ending here leave both multi-part reads out. */
  scraperExport: '2026-03-31T19:40:00.000000Z',
  aliFirstTreatment: '2026-03-31T07:12:00.000000Z',
  vendorNightStart: '2026-03-30T21:00:00Z',
})

export const ALL_FROM = '2026-03-23T00:00:00Z'
export const ALL_TO = '2026-04-02T00:00:00Z'

/** Subjects the tests follow. */
export const RECORD = Object.freeze({
  /** An applicant read by many principals (and in archive.applicants, which has no subject key). */
  manyReaders: '100777',
  /** A patient nurse.kim reads again and again. */
  rereadPatient: '5042',
  /** A patient whose id is a prefix of 5042: its treatments must not match subject 5042. */
  prefixPatient: '504',
  /** A patient read by many principals. */
  popularPatient: '5001',
  /** A firearms owner with licences (subject in the second key part). */
  owner: '30042',
})

const COLUMNS = {
  applicants: ['id', 'full_name', 'nationality', 'birth_date', 'phone', 'email', 'address'],
  patients: ['id', 'full_name', 'birth_date', 'phone', 'insurance_no', 'religion', 'sexual_orientation'],
  treatments: ['patient_id', 'n', 'date', 'code', 'diagnosis', 'notes'],
  owners: ['id', 'full_name', 'birth_date', 'address', 'phone'],
  licences: ['licence_no', 'owner_id', 'category', 'valid_until'],
  items: ['serial', 'make', 'model', 'category', 'owner_id'],
} as const

interface Read {
  at: number
  principal: string
  type?: AccessEvent['principal_type']
  onBehalfOf?: string | null
  session?: Buffer | null
  ip: string | null
  service: string
  action?: AccessEvent['action']
  db: string
  table: string
  columns: readonly string[]
  ids: string[]
  rowCount?: number
  purpose?: string | null
  outcome?: AccessEvent['outcome']
  /** Split the record ids over this many events sharing one read id, as the SDK does for large reads. */
  parts?: number
}

const WEEKDAYS = ['2026-03-23', '2026-03-24', '2026-03-25', '2026-03-26', '2026-03-27', '2026-03-30', '2026-03-31'] as const
const ALL_DAYS = ['2026-03-23', '2026-03-24', '2026-03-25', '2026-03-26', '2026-03-27', '2026-03-28', '2026-03-29', '2026-03-30', '2026-03-31'] as const

/** Berlin wall-clock minute of `day` → UTC microseconds (generation only; answers use Intl). */
function berlin(day: string, minute: number, second = 0): number {
  const offset = day < '2026-03-29' ? 60 : 120
  return (Date.parse(`${day}T00:00:00Z`) + (minute - offset) * 60_000 + second * 1000) * 1000
}

const us = (iso: string) => isoToMicros(iso.endsWith('Z') ? iso : `${iso}Z`)
const MIN = 60_000_000

/** Events of the fixture in chain order, with chains and seqs assigned. Pure and deterministic. */
export function generateQueryFixture(seed = 20_260_329): StoredEvent[] {
  const rnd = createRandom(seed)
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1))
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const chance = (p: number) => rnd() < p
  const cols = (all: readonly string[], p = 0.5) => all.filter((_, i) => i === 0 || chance(p))
  const distinct = (n: number, make: () => string) => {
    const ids = new Set<string>()
    while (ids.size < n) ids.add(make())
    return [...ids]
  }
  const applicant = () => String(int(100_001, 102_000))
  const patient = () => String(int(5000, 5999))
  const treatment = (p = patient()) => JSON.stringify([p, String(int(1, 6))])
  const owner = () => String(int(30_001, 34_000))
  const licence = (o = owner()) => JSON.stringify([`L-${int(10_000, 99_999)}`, o])
  const reads: Read[] = []
  const read = (r: Read) => reads.push(r)
  const daySession = (who: string, day: string) => sessionOf(`${who}:${day}`)

  // Registry clerks: working hours, a few evening reads.
  const clerkIp: Record<string, string> = { [P.anna]: '10.20.0.11', [P.luca]: '10.20.0.12', [P.marta]: '10.20.0.13' }
  for (const day of WEEKDAYS) {
    for (const who of [P.anna, P.luca, P.marta]) {
      for (let k = 0; k < 34; k++) {
        const minute = chance(0.93) ? int(8 * 60, 18 * 60 - 1) : int(18 * 60, 21 * 60)
        const columns = cols(COLUMNS.applicants)
        read({ at: berlin(day, minute, int(0, 59)) + int(0, 999_999), principal: who, session: daySession(who, day), ip: clerkIp[who]!, service: 'registry-api', db: 'registry', table: 'applicants', columns, ids: distinct(int(1, 5), applicant), purpose: chance(0.8) ? 'case-handling' : null })
      }
    }
    // svc.reporting: 2-4 reads of 10 rows an hour, 08:00-17:00 local (its history for the baseline).
    for (let h = 8; h < 17; h++) {
      if (day === '2026-03-31' && berlin(day, h * 60) >= us(AT.reportingSpikeHour) && berlin(day, h * 60) < us(AT.reportingSpikeHour) + 60 * MIN) continue
      for (let k = int(2, 4); k > 0; k--) {
        read({ at: berlin(day, h * 60 + int(0, 59), int(0, 59)), principal: P.reporting, type: 'service', ip: '10.20.0.40', service: 'reporting', db: 'registry', table: 'applicants', columns: ['id', 'nationality'], ids: distinct(10, applicant), purpose: 'statistics' })
      }
    }
    for (let k = 0; k < 18; k++) {
      const n = int(20, 50)
      read({ at: berlin(day, int(9 * 60, 16 * 60), int(0, 59)), principal: P.mailer, type: 'service', ip: '2001:db8:20::25', service: 'mailer', db: 'registry', table: 'applicants', columns: ['id', 'email'], ids: distinct(n, applicant), purpose: 'notification' })
    }
  }
  // svc.reporting's spike: one read a minute for an hour, three in its busiest minute (twenty times its normal hour).
  for (let m = 0; m < 60; m++) {
    for (let k = m === 30 ? 3 : 1; k > 0; k--) {
      read({ at: us(AT.reportingSpikeHour) + m * MIN + k * 7_000_000, principal: P.reporting, type: 'service', ip: '10.20.0.40', service: 'reporting', db: 'registry', table: 'applicants', columns: ['id', 'nationality'], ids: distinct(10, applicant), purpose: 'statistics' })
    }
  }

  // clerk.marta at night, 00:30-02:30 UTC on Tuesday 2026-03-31, walking ids in order, ten a read.
  let nextId = 100_001
  const martaNight = (at: number, principal: string = P.marta) => {
    read({ at, principal, session: SESSION.martaNight, ip: IP.martaNight, service: 'registry-api', db: 'registry', table: 'applicants', columns: COLUMNS.applicants, ids: Array.from({ length: 10 }, () => String(nextId++)), purpose: null })
  }
  const burst = us(AT.martaBurstMinute)
  for (let t = us('2026-03-31T00:30:00Z') + 1_250_000; t < burst; t += 20_000_000) martaNight(t)
  for (let s = 0; s < 60; s++) martaNight(burst + s * 1_000_000 + 500_000)
  for (let t = burst + MIN + 2_000_000; t < us('2026-03-31T02:30:00Z'); t += 30_000_000) martaNight(t)
  // Stolen credentials tried from the same address under another account.
  for (let k = 0; k < 3; k++) martaNight(us('2026-03-31T02:40:00Z') + k * 45_000_000, P.anna)

  // The 3-part export: one read of 1,200 applicants, each part carrying the whole read's row_count.
  read({ at: us(AT.archiveExport), principal: P.archive, type: 'service', ip: '10.20.0.50', service: 'archive', action: 'export', db: 'registry', table: 'applicants', columns: ['id', 'full_name', 'birth_date'], ids: Array.from({ length: 1200 }, (_, i) => String(100_001 + i)), purpose: 'retention-review', parts: 3 })

  // A principal whose name is an injection attempt: it exists and must be matched as data.
  for (const [day, minute] of [['2026-03-24', 10 * 60 + 5], ['2026-03-26', 11 * 60 + 40], ['2026-03-31', 9 * 60 + 15]] as const) {
    read({ at: berlin(day, minute), principal: P.hostile, ip: '10.20.0.66', service: 'registry-api', db: 'registry', table: 'applicants', columns: ['id', 'full_name'], ids: distinct(2, applicant), purpose: null })
    read({ at: berlin(day, minute + 1), principal: P.hostile, ip: '10.20.0.66', service: 'registry-api', db: 'registry', table: 'applicants', columns: ['id', 'phone'], ids: [], rowCount: 0, purpose: null, outcome: 'denied' })
  }

  // The record read by many: each reader once more on a known day, archive.applicants included.
  const many = RECORD.manyReaders
  ;[P.anna, P.luca, P.marta, P.hostile].forEach((who, i) => {
    read({ at: berlin('2026-03-27', 10 * 60 + i * 7, 13), principal: who, ip: clerkIp[who] ?? '10.20.0.66', service: 'registry-api', db: 'registry', table: 'applicants', columns: ['id', 'full_name', 'address'], ids: [many], purpose: 'case-handling' })
  })
  read({ at: berlin('2026-03-27', 11 * 60, 2), principal: P.mailer, type: 'service', ip: '2001:db8:20::25', service: 'mailer', db: 'registry', table: 'applicants', columns: ['id', 'email'], ids: [many, '100778'], purpose: 'notification' })
  read({ at: berlin('2026-03-27', 11 * 60 + 3), principal: P.reporting, type: 'service', ip: '10.20.0.40', service: 'reporting', db: 'registry', table: 'applicants', columns: ['id', 'nationality'], ids: [many], purpose: 'statistics' })
  for (const day of ['2026-03-30', '2026-03-31'] as const) {
    read({ at: berlin(day, 15 * 60 + 1), principal: P.luca, ip: clerkIp[P.luca]!, service: 'archive-ui', db: 'archive', table: 'applicants', columns: ['id', 'full_name', 'archived_at'], ids: [many, String(int(100_001, 102_000))], purpose: 'archive-lookup' })
  }

  // Time-zone boundaries in Berlin, winter and summer.
  const edge = (iso: string, principal: string) =>
    read({ at: us(iso), principal, session: daySession(principal, iso.slice(0, 10)), ip: clerkIp[principal]!, service: 'registry-api', db: 'registry', table: 'applicants', columns: ['id', 'full_name'], ids: [applicant()], purpose: 'case-handling' })
  edge(AT.winterBeforeWork, P.anna)
  edge(AT.winterWorkStarts, P.anna)
  edge(AT.winterLastWorkMicro, P.anna)
  edge(AT.winterWorkEnds, P.anna)
  edge(AT.summerBeforeWork, P.luca)
  edge(AT.summerWorkStarts, P.luca)
  edge(AT.summerEarlyWork, P.luca)
  edge(AT.kolkataBefore, P.luca)
  edge(AT.kolkataAt, P.luca)

  // Practice: doctors, nurses and reception in working hours; purpose mostly given.
  const treatmentsOf = (p: string, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify([p, String(i + 1)]))
  for (const day of WEEKDAYS) {
    for (let k = 0; k < 30; k++) {
      const at = berlin(day, int(8 * 60, 18 * 60 - 1), int(0, 59)) + int(0, 999_999)
      const purpose = chance(0.9) ? 'care' : null
      if (chance(0.6)) read({ at, principal: P.weber, session: daySession(P.weber, day), ip: '10.30.0.21', service: 'practice-app', db: 'practice', table: 'patients', columns: cols(COLUMNS.patients, 0.35), ids: distinct(int(1, 3), patient), purpose })
      else read({ at, principal: P.weber, session: daySession(P.weber, day), ip: '10.30.0.21', service: 'practice-app', db: 'practice', table: 'treatments', columns: cols(COLUMNS.treatments), ids: distinct(int(1, 4), treatment), purpose })
    }
    for (let k = 0; k < 20; k++) {
      const at = berlin(day, int(7 * 60, 19 * 60), int(0, 59))
      const [table, columns, ids]: [string, string[], string[]] = chance(0.7)
        ? ['patients', ['id', 'full_name', 'phone'], distinct(int(1, 2), patient)]
        : ['treatments', ['patient_id', 'n', 'code'], distinct(int(1, 2), treatment)]
      read({ at, principal: P.kim, session: daySession(P.kim, day), ip: '2001:db8:30::22', service: 'practice-app', db: 'practice', table, columns, ids, purpose: 'care' })
    }
    // The record one principal reads over and over.
    for (const minute of [9 * 60 + 10, 15 * 60 + 45]) {
      read({ at: berlin(day, minute, 30), principal: P.kim, session: daySession(P.kim, day), ip: '2001:db8:30::22', service: 'practice-app', db: 'practice', table: 'patients', columns: ['id', 'full_name', 'phone', 'insurance_no'], ids: [RECORD.rereadPatient], purpose: 'care' })
    }
    for (let k = 0; k < 25; k++) {
      const purpose = pick(['appointment', 'appointment', 'appointment', 'appointment', null, '', '   '] as const)
      read({ at: berlin(day, int(8 * 60, 17 * 60), int(0, 59)), principal: P.ali, session: daySession(P.ali, day), ip: '10.30.0.23', service: 'practice-app', db: 'practice', table: 'patients', columns: ['id', 'full_name', 'phone'], ids: distinct(1, patient), purpose })
    }
  }
  // svc.billing every night, weekends too.
  for (const day of ALL_DAYS) {
    read({ at: us(`${day}T23:30:00Z`) + int(0, 59_000_000), principal: P.billing, type: 'service', ip: '10.30.0.50', service: 'billing', db: 'practice', table: 'treatments', columns: ['patient_id', 'n', 'code'], ids: distinct(int(60, 90), treatment), purpose: 'billing' })
  }
  // Either side of the jump to summer time, Sunday night.
  for (const iso of [AT.dstBeforeJump, AT.dstAfterJump]) {
    read({ at: us(iso), principal: P.billing, type: 'service', ip: '10.30.0.50', service: 'billing', db: 'practice', table: 'treatments', columns: ['patient_id', 'n'], ids: distinct(3, treatment), purpose: 'billing' })
  }
  // Subjects with several records, and a near-miss prefix.
  read({ at: berlin('2026-03-26', 10 * 60 + 30), principal: P.weber, ip: '10.30.0.21', service: 'practice-app', db: 'practice', table: 'treatments', columns: ['patient_id', 'n', 'diagnosis'], ids: treatmentsOf(RECORD.rereadPatient, 3), purpose: 'care' })
  read({ at: berlin('2026-03-26', 10 * 60 + 31), principal: P.weber, ip: '10.30.0.21', service: 'practice-app', db: 'practice', table: 'treatments', columns: ['patient_id', 'n', 'diagnosis'], ids: treatmentsOf(RECORD.prefixPatient, 2), purpose: 'care' })
  read({ at: berlin('2026-03-26', 10 * 60 + 32), principal: P.weber, ip: '10.30.0.21', service: 'practice-app', db: 'practice', table: 'patients', columns: ['id', 'religion'], ids: [RECORD.prefixPatient, RECORD.popularPatient], purpose: 'care' })
  ;[P.weber, P.kim, P.ali].forEach((who, i) =>
    read({ at: berlin('2026-03-30', 9 * 60 + i), principal: who, ip: '10.30.0.9', service: 'practice-app', db: 'practice', table: 'patients', columns: ['id', 'full_name'], ids: [RECORD.popularPatient], purpose: 'care' }),
  )
  // reception.ali's first read of treatments.
  read({ at: us(AT.aliFirstTreatment), principal: P.ali, ip: '10.30.0.23', service: 'practice-app', db: 'practice', table: 'treatments', columns: ['patient_id', 'n', 'date'], ids: [JSON.stringify([RECORD.popularPatient, '1'])], purpose: 'appointment' })
  // Purposes that are whitespace but not spaces, on the last morning.
  read({ at: us('2026-04-01T07:05:00Z'), principal: P.ali, ip: '10.30.0.23', service: 'practice-app', db: 'practice', table: 'patients', columns: ['id', 'phone'], ids: ['5100'], purpose: '\t' })
  read({ at: us('2026-04-01T07:06:00Z'), principal: P.ali, ip: '10.30.0.23', service: 'practice-app', db: 'practice', table: 'patients', columns: ['id', 'phone'], ids: ['5101'], purpose: ' \n' })
  read({ at: us('2026-04-01T07:07:00Z'), principal: P.ali, ip: '10.30.0.23', service: 'practice-app', db: 'practice', table: 'patients', columns: ['id', 'phone'], ids: ['5102'], purpose: '  ' })

  // vendor.support: support tickets by day, then a night of sensitive columns over IPv6.
  for (const day of ['2026-03-24', '2026-03-26'] as const) {
    for (let k = 0; k < 3; k++) {
      read({ at: berlin(day, 14 * 60 + k * 9), principal: P.vendor, onBehalfOf: 'acme-medsoft', ip: '10.30.0.99', service: 'practice-support', db: 'practice', table: 'treatments', columns: ['patient_id', 'n', 'code'], ids: distinct(2, treatment), purpose: 'support ticket 4711' })
    }
  }
  const vendorStart = us(AT.vendorNightStart)
  for (let k = 0; k < 150; k++) {
    // One read of twenty: the night's unique busiest minute.
    const ids = k === 75 ? [RECORD.rereadPatient, RECORD.popularPatient] : distinct(k === 100 ? 20 : int(4, 8), patient)
    read({ at: vendorStart + k * 36_000_000 + int(0, 999_999), principal: P.vendor, onBehalfOf: 'acme-medsoft', session: SESSION.vendorNight, ip: IP.vendorNight, service: 'practice-support', db: 'practice', table: 'patients', columns: ['id', 'full_name', 'phone', 'religion', 'sexual_orientation'], ids, purpose: null })
  }

  // Firearms: officers by day; citizens on the public portal, one session each.
  for (const day of WEEKDAYS) {
    for (let k = 0; k < 20; k++) {
      const at = berlin(day, int(8 * 60, 17 * 60), int(0, 59))
      const table = pick(['owners', 'owners', 'licences', 'items'] as const)
      const ids = table === 'owners' ? distinct(int(1, 3), owner) : table === 'licences' ? distinct(int(1, 2), () => licence()) : distinct(1, () => `SN-${int(100_000, 999_999)}`)
      read({ at, principal: P.rossi, session: daySession(P.rossi, day), ip: '10.40.0.31', service: 'firearms-office', db: 'firearms', table, columns: cols(COLUMNS[table]), ids, purpose: 'licence-check' })
    }
  }
  let citizen = 0
  for (const day of ALL_DAYS) {
    for (let k = 0; k < 40; k++) {
      const who = day === '2026-03-27' && k === 0 ? RECORD.owner : owner()
      const session = sessionOf(`citizen-${citizen++}`)
      const ip = chance(0.7) ? `198.51.100.${int(1, 254)}` : `2001:db8:77::${int(1, 0xffff).toString(16)}`
      const at = berlin(day, int(7 * 60, 21 * 60), int(0, 59))
      read({ at, principal: P.portal, type: 'service', session, ip, service: 'firearms-portal', db: 'firearms', table: 'owners', columns: ['id', 'full_name', 'address'], ids: [who], purpose: null })
      read({ at: at + 4_000_000, principal: P.portal, type: 'service', session, ip, service: 'firearms-portal', db: 'firearms', table: 'licences', columns: ['licence_no', 'owner_id', 'valid_until'], ids: [licence(who), licence(who)], purpose: null })
    }
  }
  read({ at: berlin('2026-03-27', 11 * 60), principal: P.rossi, ip: '10.40.0.31', service: 'firearms-office', db: 'firearms', table: 'licences', columns: ['licence_no', 'owner_id'], ids: [JSON.stringify(['L-00042', RECORD.owner])], purpose: 'licence-check' })

  // The scraper on the portal token, Tuesday 19:00-19:40 UTC, ending in one 2-part read of 1,500 owners.
  let nextOwner = 31_501
  const scrapeStart = us(AT.scrapeStart)
  for (let k = 0; k < 78; k++) {
    const at = scrapeStart + k * 30_000_000 + int(0, 999_999)
    // Mostly session 1 from the main address; a few of session 1 from a second address, a few of session 2 from the main one.
    const [session, ip] = k % 13 === 5 ? [SESSION.scrape1, IP.scraperAlt] : k % 13 === 9 ? [SESSION.scrape2, IP.scraper] : [SESSION.scrape1, IP.scraper]
    if (k % 20 === 19) {
      read({ at, principal: P.portal, type: 'service', session, ip, service: 'firearms-portal', db: 'firearms', table: 'items', columns: ['serial', 'make', 'model', 'owner_id'], ids: distinct(5, () => `SN-${int(100_000, 999_999)}`), purpose: null })
    } else if (k % 2 === 0) {
      read({ at, principal: P.portal, type: 'service', session, ip, service: 'firearms-portal', db: 'firearms', table: 'owners', columns: COLUMNS.owners, ids: Array.from({ length: k === 40 ? 60 : 25 }, () => String(nextOwner++)), purpose: null })
    } else {
      read({ at, principal: P.portal, type: 'service', session, ip, service: 'firearms-portal', db: 'firearms', table: 'licences', columns: COLUMNS.licences, ids: Array.from({ length: 25 }, (_, i) => licence(String(nextOwner - 25 + i))), purpose: null })
    }
  }
  read({ at: us(AT.scraperExport), principal: P.portal, type: 'service', session: SESSION.scrape1, ip: IP.scraper, service: 'firearms-portal', db: 'firearms', table: 'owners', columns: COLUMNS.owners, ids: Array.from({ length: 1500 }, (_, i) => String(30_001 + i)), purpose: null, parts: 2 })

  // A contractor with no history reading 350 rows in one minute, then a little more.
  const cm = us(AT.contractorMinute)
  for (let k = 0; k < 7; k++) read({ at: cm + k * 8_000_000 + 100_000, principal: P.contractor, ip: IP.contractor, service: 'registry-api', db: 'registry', table: 'applicants', columns: ['id', 'full_name', 'phone'], ids: distinct(50, applicant), purpose: 'data-migration' })
  for (let k = 0; k < 2; k++) read({ at: cm + 5 * MIN + k * MIN, principal: P.contractor, ip: IP.contractor, service: 'registry-api', db: 'registry', table: 'applicants', columns: ['id'], ids: distinct(10, applicant), purpose: 'data-migration' })

  // The last morning: a few reads after every default window.
  for (let k = 0; k < 6; k++) read({ at: us('2026-04-01T06:30:00Z') + k * 7 * MIN, principal: pick([P.anna, P.luca, P.weber]), ip: '10.20.0.11', service: 'registry-api', db: 'registry', table: 'applicants', columns: ['id'], ids: [applicant()], purpose: 'case-handling' })

  return toEvents(reads, rnd)
}

/** Reads → events (parts sharing a read id), in time order, each read on one chain, seqs from 1, a contiguous producer sequence per service. */
function toEvents(reads: Read[], rnd: () => number): StoredEvent[] {
  const uuid = () => {
    const hex = Array.from({ length: 32 }, () => Math.floor(rnd() * 16).toString(16))
    hex[12] = '4'
    hex[16] = '89ab'[Math.floor(rnd() * 4)]!
    const h = hex.join('')
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
  }
  const order = reads.map((r, i) => ({ r, i, chain: CHAINS[Math.floor(rnd() * CHAINS.length)]!, readId: uuid() }))
  order.sort((a, b) => a.r.at - b.r.at || a.i - b.i)
  const seqs = new Map<string, number>()
  const producers = new Map<string, number>()
  const events: StoredEvent[] = []
  for (const { r, chain, readId } of order) {
    const parts = r.parts ?? 1
    const size = Math.ceil(r.ids.length / parts)
    for (let p = 0; p < parts; p++) {
      const seq = (seqs.get(chain) ?? 0) + 1
      seqs.set(chain, seq)
      const producerId = `${r.service}@app-1`
      const producerSeq = (producers.get(producerId) ?? 0) + 1
      producers.set(producerId, producerSeq)
      events.push({
        event_id: uuid(),
        read_id: readId,
        part_index: p,
        part_count: parts,
        occurred_at: r.at,
        principal_id: r.principal,
        principal_type: r.type ?? 'user',
        on_behalf_of: r.onBehalfOf ?? null,
        session_hash: r.session ?? null,
        client_ip: r.ip,
        service: r.service,
        environment: 'production',
        action: r.action ?? 'read',
        db_name: r.db,
        table_name: r.table,
        columns: [...r.columns],
        record_ids: r.ids.slice(p * size, (p + 1) * size),
        record_ids_complete: true,
        row_count: r.rowCount ?? r.ids.length,
        query_fingerprint: `SELECT ${r.columns.join(', ')} FROM ${r.table} WHERE ${r.table === 'treatments' ? '(patient_id, n)' : 'id'} IN (?+)`,
        db_session: '',
        statement_digest: '',
        purpose: r.purpose ?? null,
        trace_id: null,
        outcome: r.outcome ?? 'success',
        producer_id: producerId,
        producer_seq: producerSeq,
        chain_id: chain,
        seq,
      })
    }
  }
  return events
}

/**
 * Links each chain and inserts it in batches of `batchSize`, as the chain
 * writer does (one insert per batch, so the hourly rollup may hold several
 * unmerged rows per key).
 */
export async function writeEvents(store: Store, events: readonly StoredEvent[], batchSize = 500): Promise<void> {
  for (const chainId of new Set(events.map((e) => e.chain_id))) {
    const chain = events.filter((e) => e.chain_id === chainId)
    let head: ChainHead = emptyChain(chainId)
    for (let i = 0; i < chain.length; i += batchSize) {
      const batch = chain.slice(i, i + batchSize)
      const linked = linkEntries(
        head,
        batch.map((e) => ({ event: stripChain(e), offset: BigInt(e.seq - 1), schemaVersion: 1 })),
        Date.UTC(2026, 3, 2, 12) * 1000,
      )
      if (linked.head.seq !== batch[batch.length - 1]!.seq) throw new Error(`chain ${chainId}: fixture seqs do not follow the chain`)
      await store.insertRowBinary('access_log', linked.rows, linked.count)
      head = linked.head
    }
  }
}

function stripChain(e: StoredEvent): AccessEvent {
  const { chain_id: _chain, seq: _seq, ...event } = e
  return event
}

export interface QueryFixture {
  store: Store
  events: StoredEvent[]
}

/** The fixture written into a fresh database. */
export async function openQueryFixture(): Promise<QueryFixture> {
  const store = await openTestStore()
  const events = generateQueryFixture()
  await writeEvents(store, events)
  return { store, events }
}

// ---------------------------------------------------------------------------
// Replay: the answers, computed from the events without ClickHouse.
// ---------------------------------------------------------------------------

/** Window bounds as the queries take them ([from, to), either open). */
export interface Window {
  from?: string | Date
  to?: string | Date
}

const toMicros = (t: string | Date | undefined, open: number): number => (t === undefined ? open : t instanceof Date ? t.getTime() * 1000 : us(t))

export function inWindow(e: StoredEvent, w: Window): boolean {
  return e.occurred_at >= toMicros(w.from, -Infinity) && e.occurred_at < toMicros(w.to, Infinity)
}

/** Byte-order comparison, as ClickHouse sorts String. */
export function cmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort(cmp)
const q = (e: StoredEvent) => `${e.db_name}.${e.table_name}`

/** Chain ranges of a set of events, as QueryAnswer.sources names them. */
export function sourcesOf(events: readonly StoredEvent[]): ChainSource[] {
  const by = new Map<string, ChainSource>()
  for (const e of events) {
    const s = by.get(e.chain_id)
    if (!s) by.set(e.chain_id, { chain_id: e.chain_id, first_seq: e.seq, last_seq: e.seq, events: 1 })
    else {
      s.first_seq = Math.min(s.first_seq, e.seq)
      s.last_seq = Math.max(s.last_seq, e.seq)
      s.events += 1
    }
  }
  return [...by.values()].sort((a, b) => cmp(a.chain_id, b.chain_id))
}

/**
 * Reads and rows of a set of events: a read split into parts is one read, and
 * every part carries the whole read's row_count (access-event.v1.avsc), so
 * rows count once per read id.
 */
export function readTotals(events: readonly StoredEvent[]): { reads: number; rows_read: number } {
  const rows = new Map<string, number>()
  for (const e of events) rows.set(e.read_id, e.row_count)
  let total = 0
  for (const n of rows.values()) total += n
  return { reads: rows.size, rows_read: total }
}

function span(events: readonly StoredEvent[]): { first: number; last: number } {
  let first = Infinity
  let last = -Infinity
  for (const e of events) {
    first = Math.min(first, e.occurred_at)
    last = Math.max(last, e.occurred_at)
  }
  return { first, last }
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>()
  for (const x of xs) {
    const k = key(x)
    const list = m.get(k)
    if (list) list.push(x)
    else m.set(k, [x])
  }
  return m
}

/** The data subject of a record, or null when its table has no subject key. */
export function subjectOf(db: string, table: string, recordId: string, keys: SubjectKeys = SUBJECT_KEYS): string | null {
  const part = keys.get(`${db}.${table}`)
  if (part === undefined) return null
  if (part === 0) return recordId
  const parsed: unknown = JSON.parse(recordId)
  const value = Array.isArray(parsed) ? (parsed as unknown[])[part - 1] : undefined
  return typeof value === 'string' ? value : ''
}

export function recordsTouched(events: readonly StoredEvent[], p: { principal: string; table?: string } & Window) {
  const used = events.filter((e) => e.principal_id === p.principal && (p.table === undefined || e.table_name === p.table) && inWindow(e, p))
  const per = new Map<string, { database: string; table: string; record_id: string; columns: Set<string>; first: number; last: number; access_count: number }>()
  for (const e of used) {
    for (const id of e.record_ids) {
      const k = `${e.db_name}\u0000${e.table_name}\u0000${id}`
      const r = per.get(k) ?? { database: e.db_name, table: e.table_name, record_id: id, columns: new Set<string>(), first: e.occurred_at, last: e.occurred_at, access_count: 0 }
      e.columns.forEach((c) => r.columns.add(c))
      r.first = Math.min(r.first, e.occurred_at)
      r.last = Math.max(r.last, e.occurred_at)
      r.access_count += 1
      per.set(k, r)
    }
  }
  const rows = [...per.values()]
    .sort((a, b) => cmp(a.database, b.database) || cmp(a.table, b.table) || cmp(a.record_id, b.record_id))
    .map((r) => ({ database: r.database, table: r.table, record_id: r.record_id, columns: sorted(r.columns), first_access: r.first, last_access: r.last, access_count: r.access_count }))
  return { rows, sources: sourcesOf(used) }
}

/** How ClickHouse shows a client address: IPv4 as dotted quad, IPv6 compressed. */
export function shownIp(ip: string | null): string | null {
  if (ip === null) return null
  if (isIP(ip) === 4) return ip
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
}

export function whoTouched(events: readonly StoredEvent[], p: { table: string; record: string; database?: string } & Window) {
  const used = events.filter((e) => e.table_name === p.table && e.record_ids.includes(p.record) && (p.database === undefined || e.db_name === p.database) && inWindow(e, p))
  const rows = [...used]
    .sort((a, b) => a.occurred_at - b.occurred_at || cmp(a.chain_id, b.chain_id) || a.seq - b.seq)
    .map((e) => ({
      occurred_at: e.occurred_at,
      principal_id: e.principal_id,
      principal_type: e.principal_type,
      on_behalf_of: e.on_behalf_of,
      database: e.db_name,
      columns: e.columns,
      client_ip: shownIp(e.client_ip),
      session_hash: e.session_hash?.toString('hex') ?? null,
      service: e.service,
      action: e.action,
      purpose: e.purpose,
      outcome: e.outcome,
      event_id: e.event_id,
      chain_id: e.chain_id,
      seq: e.seq,
    }))
  return { rows, sources: sourcesOf(used) }
}

export function subjectAccess(events: readonly StoredEvent[], p: { subject: string } & Window, keys: SubjectKeys = SUBJECT_KEYS) {
  const rows: Array<Record<string, unknown> & { occurred_at: number; chain_id: string; seq: number; record_id: string }> = []
  const used: StoredEvent[] = []
  for (const e of events) {
    if (!inWindow(e, p)) continue
    const mine = e.record_ids.filter((id) => subjectOf(e.db_name, e.table_name, id, keys) === p.subject)
    if (mine.length === 0) continue
    used.push(e)
    for (const id of mine) {
      rows.push({
        occurred_at: e.occurred_at,
        principal_id: e.principal_id,
        principal_type: e.principal_type,
        on_behalf_of: e.on_behalf_of,
        database: e.db_name,
        table: e.table_name,
        record_id: id,
        columns: e.columns,
        purpose: e.purpose,
        client_ip: shownIp(e.client_ip),
        service: e.service,
        action: e.action,
        outcome: e.outcome,
        chain_id: e.chain_id,
        seq: e.seq,
      })
    }
  }
  rows.sort((a, b) => a.occurred_at - b.occurred_at || cmp(a.chain_id, b.chain_id) || a.seq - b.seq || cmp(a.record_id, b.record_id))
  return { rows, sources: sourcesOf(used) }
}

export interface BreachLeads {
  principals?: string[]
  ips?: string[]
  /** Session hashes as hex. */
  sessions?: string[]
  from: string
  to: string
}

/** An address in one form however it was written (IPv4 as IPv4-mapped IPv6, as ClickHouse stores it), for comparing addresses. */
function ipKey(ip: string): string {
  if (isIP(ip) === 4) return `::ffff:${ip}`
  return shownIp(ip)!.toLowerCase()
}

export function breachReads(events: readonly StoredEvent[], p: BreachLeads): StoredEvent[] {
  const principals = new Set(p.principals ?? [])
  const ips = new Set((p.ips ?? []).map(ipKey))
  const sessions = new Set((p.sessions ?? []).map((s) => s.toLowerCase()))
  return events.filter(
    (e) =>
      inWindow(e, p) &&
      (principals.has(e.principal_id) || (e.client_ip !== null && ips.has(ipKey(e.client_ip))) || (e.session_hash !== null && sessions.has(e.session_hash.toString('hex')))),
  )
}

export function breachScope(events: readonly StoredEvent[], p: BreachLeads, keys: SubjectKeys = SUBJECT_KEYS) {
  const used = breachReads(events, p)
  const rows = [...groupBy(used, (e) => `${e.db_name}\u0000${e.table_name}`).values()]
    .map((es) => {
      const e0 = es[0]!
      const records = new Set(es.flatMap((e) => e.record_ids))
      const { first, last } = span(es)
      return {
        database: e0.db_name,
        table: e0.table_name,
        distinct_records: records.size,
        distinct_subjects: keys.has(q(e0)) ? new Set([...records].map((id) => subjectOf(e0.db_name, e0.table_name, id, keys))).size : null,
        columns: sorted(es.flatMap((e) => e.columns)),
        ...readTotals(es),
        principals: sorted(es.map((e) => e.principal_id)),
        first_access: first,
        last_access: last,
      }
    })
    .sort((a, b) => cmp(a.database, b.database) || cmp(a.table, b.table))
  return { rows, sources: sourcesOf(used) }
}

export function breachRecords(events: readonly StoredEvent[], p: BreachLeads, keys: SubjectKeys = SUBJECT_KEYS) {
  const used = breachReads(events, p)
  const per = new Map<string, { database: string; table: string; record_id: string; events: StoredEvent[] }>()
  for (const e of used) {
    for (const id of new Set(e.record_ids)) {
      const k = `${e.db_name}\u0000${e.table_name}\u0000${id}`
      const r = per.get(k) ?? { database: e.db_name, table: e.table_name, record_id: id, events: [] }
      r.events.push(e)
      per.set(k, r)
    }
  }
  const rows = [...per.values()]
    .sort((a, b) => cmp(a.database, b.database) || cmp(a.table, b.table) || cmp(a.record_id, b.record_id))
    .map((r) => {
      const { first, last } = span(r.events)
      return {
        database: r.database,
        table: r.table,
        record_id: r.record_id,
        subject_id: subjectOf(r.database, r.table, r.record_id, keys),
        columns: sorted(r.events.flatMap((e) => e.columns)),
        reads: r.events.length,
        principals: sorted(r.events.map((e) => e.principal_id)),
        first_access: first,
        last_access: last,
      }
    })
  return { rows, sources: sourcesOf(used) }
}

export const BUCKET_SECONDS = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '6h': 21_600, '1d': 86_400 } as const

export function timeline(used: readonly StoredEvent[], bucket: keyof typeof BUCKET_SECONDS) {
  const size = BUCKET_SECONDS[bucket] * 1_000_000
  const rows = [...groupBy(used, (e) => `${Math.floor(e.occurred_at / size) * size}\u0000${e.db_name}\u0000${e.table_name}`).values()]
    .map((es) => ({ bucket_start: Math.floor(es[0]!.occurred_at / size) * size, database: es[0]!.db_name, table: es[0]!.table_name, ...readTotals(es) }))
    .sort((a, b) => a.bucket_start - b.bucket_start || cmp(a.database, b.database) || cmp(a.table, b.table))
  return { rows, sources: sourcesOf(used) }
}

export function principalTimeline(events: readonly StoredEvent[], p: { principal: string; bucket: keyof typeof BUCKET_SECONDS } & Window) {
  return timeline(events.filter((e) => e.principal_id === p.principal && inWindow(e, p)), p.bucket)
}

/** Per principal, database and table: reads, rows, first and last. */
function perPrincipalTable(used: readonly StoredEvent[]) {
  return [...groupBy(used, (e) => `${e.principal_id}\u0000${e.db_name}\u0000${e.table_name}`).values()].map((es) => {
    const { first, last } = span(es)
    return { principal_id: es[0]!.principal_id, database: es[0]!.db_name, table: es[0]!.table_name, ...readTotals(es), first_access: first, last_access: last }
  })
}

type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun'

const formatters = new Map<string, Intl.DateTimeFormat>()
/** Local weekday and minute after midnight of a UTC instant, by Intl's time-zone database. */
export function localTime(micros: number, timeZone: string): { weekday: Weekday; minute: number } {
  let f = formatters.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    formatters.set(timeZone, f)
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(Math.floor(micros / 1000))).map((x) => [x.type, x.value]))
  return { weekday: String(parts['weekday']).toLowerCase().slice(0, 3) as Weekday, minute: Number(parts['hour']) * 60 + Number(parts['minute']) }
}

export interface OffHoursParams extends Window {
  from: string
  to: string
  timezone?: string
  /** HH:MM */
  workday_start?: string
  workday_end?: string
  weekdays?: Weekday[]
  principal?: string
  database?: string
  table?: string
}

const clock = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3))

export function isOffHours(e: StoredEvent, p: Pick<OffHoursParams, 'timezone' | 'workday_start' | 'workday_end' | 'weekdays'>): boolean {
  const local = localTime(e.occurred_at, p.timezone ?? 'Europe/Berlin')
  const start = clock(p.workday_start ?? '08:00')
  const end = clock(p.workday_end ?? '18:00')
  const days = p.weekdays ?? ['mon', 'tue', 'wed', 'thu', 'fri']
  return !(days.includes(local.weekday) && local.minute >= start && local.minute < end)
}

const filtered = (e: StoredEvent, p: { principal?: string; database?: string; table?: string }) =>
  (p.principal === undefined || e.principal_id === p.principal) && (p.database === undefined || e.db_name === p.database) && (p.table === undefined || e.table_name === p.table)

export function offHours(events: readonly StoredEvent[], p: OffHoursParams & { limit?: number }) {
  const rows = perPrincipalTable(events.filter((e) => inWindow(e, p) && filtered(e, p) && isOffHours(e, p))).sort(
    (a, b) => b.rows_read - a.rows_read || cmp(a.principal_id, b.principal_id) || cmp(a.database, b.database) || cmp(a.table, b.table),
  )
  // The answer claims no other off-hours read in the window: it stands on every event there.
  return { rows: p.limit ? rows.slice(0, p.limit) : rows, sources: sourcesOf(events.filter((e) => inWindow(e, p))) }
}

export function hasNoPurpose(e: StoredEvent): boolean {
  return e.purpose === null || e.purpose.trim() === ''
}

/**
 * Reads without a purpose per principal and listed table; first/last access
 * are of any read of that table by that principal in the window (as the
 * query documents), and the answer stands on every read of the listed tables.
 */
export function readsWithoutPurpose(events: readonly StoredEvent[], p: { tables: string[]; from: string; to: string; limit?: number }) {
  const listed = events.filter((e) => inWindow(e, p) && p.tables.includes(q(e)))
  const rows = [...groupBy(listed, (e) => `${e.principal_id}\u0000${e.db_name}\u0000${e.table_name}`).values()]
    .filter((es) => es.some(hasNoPurpose))
    .map((es) => {
      const { first, last } = span(es)
      return { principal_id: es[0]!.principal_id, database: es[0]!.db_name, table: es[0]!.table_name, ...readTotals(es.filter(hasNoPurpose)), first_access: first, last_access: last }
    })
    .sort((a, b) => b.reads - a.reads || cmp(a.principal_id, b.principal_id) || cmp(a.database, b.database) || cmp(a.table, b.table))
  return { rows: p.limit ? rows.slice(0, p.limit) : rows, sources: sourcesOf(listed) }
}

const DAY = 86_400_000_000

export function firstTimeAccess(events: readonly StoredEvent[], p: { from: string; to: string; lookback_days?: number; database?: string; table?: string }) {
  const from = us(p.from)
  const lookFrom = from - (p.lookback_days ?? 90) * DAY
  // It stands on the window and on the absence of reads of the same tables in the look-back.
  const span_ = events.filter((e) => e.occurred_at >= lookFrom && e.occurred_at < us(p.to) && filtered(e, p))
  const rows = [...groupBy(span_, (e) => `${e.principal_id}\u0000${e.db_name}\u0000${e.table_name}`).values()]
    .filter((es) => span(es).first >= from)
    .map((es) => ({ principal_id: es[0]!.principal_id, database: es[0]!.db_name, table: es[0]!.table_name, first_read_at: span(es).first, ...readTotals(es) }))
    .sort((a, b) => a.first_read_at - b.first_read_at || cmp(a.principal_id, b.principal_id) || cmp(a.database, b.database) || cmp(a.table, b.table))
  return { rows, sources: sourcesOf(span_) }
}

export function topReaders(events: readonly StoredEvent[], p: { from: string; to: string; database?: string; table?: string; limit?: number }) {
  const used = events.filter((e) => inWindow(e, p) && filtered(e, p))
  const rows = [...groupBy(used, (e) => e.principal_id).values()]
    .map((es) => {
      const { first, last } = span(es)
      return {
        principal_id: es[0]!.principal_id,
        ...readTotals(es),
        distinct_records: new Set(es.flatMap((e) => e.record_ids.map((id) => `${q(e)}\u0000${id}`))).size,
        tables: sorted(es.map(q)),
        first_access: first,
        last_access: last,
      }
    })
    .sort((a, b) => b.rows_read - a.rows_read || cmp(a.principal_id, b.principal_id))
    .slice(0, p.limit ?? 20)
  return { rows, sources: sourcesOf(used) }
}

const HOUR = 3_600_000_000

/**
 * The scraper pattern. A principal-hour is flagged when the whole UTC hour
 * (of the hours overlapping the window) holds `threshold` rows or more, or
 * `factor` times the principal's baseline: its mean rows per active hour in
 * the whole hours of the `baseline_days` before the hour holding `from`. The
 * peak minute and hour are those of the flagged hours, inside the window;
 * reads, rows and first/last are of all the principal's reads in the window.
 */
export function bulkExtraction(events: readonly StoredEvent[], p: { from: string; to: string; threshold?: number; factor?: number; baseline_days?: number }) {
  const threshold = p.threshold ?? 300
  const factor = p.factor ?? 10
  const from = us(p.from)
  const window = events.filter((e) => inWindow(e, p))
  const hourOf = (t: number) => Math.floor(t / HOUR) * HOUR
  const baseTo = hourOf(from)
  const baseFrom = baseTo - (p.baseline_days ?? 7) * DAY
  const history = events.filter((e) => e.occurred_at >= baseFrom && e.occurred_at < baseTo)
  const rows = []
  /** Every minute tied for a principal's peak; `peak_minute` is the first. */
  const peakMinutes = new Map<string, number[]>()
  for (const es of groupBy(window, (e) => e.principal_id).values()) {
    const principal = es[0]!.principal_id
    const mine = history.filter((e) => e.principal_id === principal)
    const activeHours = new Set(mine.map((e) => hourOf(e.occurred_at))).size
    const base = activeHours > 0 && readTotals(mine).rows_read > 0 ? readTotals(mine).rows_read / activeHours : null
    // An hour is flagged on the principal's rows inside the window.
    const flagged = new Set(
      [...groupBy(es, (e) => String(hourOf(e.occurred_at))).entries()]
        .filter(([, xs]) => readTotals(xs).rows_read >= threshold || (base !== null && readTotals(xs).rows_read >= factor * base))
        .map(([h]) => Number(h)),
    )
    const hot = es.filter((e) => flagged.has(hourOf(e.occurred_at)))
    if (hot.length === 0) continue
    const bucketRows = (size: number) => [...groupBy(hot, (e) => String(Math.floor(e.occurred_at / size) * size)).entries()].map(([k, xs]) => ({ at: Number(k), rows: readTotals(xs).rows_read }))
    const minutes = bucketRows(60_000_000)
    const peakRows = Math.max(...minutes.map((m) => m.rows))
    const peakHour = Math.max(...bucketRows(HOUR).map((h) => h.rows))
    const reason = [peakRows >= threshold ? 'threshold' : '', base !== null && peakHour >= factor * base ? 'baseline' : ''].filter(Boolean).join('+')
    if (!reason) continue
    peakMinutes.set(principal, minutes.filter((m) => m.rows === peakRows).map((m) => m.at).sort((a, b) => a - b))
    const { first, last } = span(es)
    rows.push({
      principal_id: principal,
      reason,
      peak_minute: peakMinutes.get(principal)![0]!,
      peak_rows_per_minute: peakRows,
      peak_hour_rows: peakHour,
      baseline_rows_per_hour: base,
      ratio: base === null ? null : peakHour / base,
      ...readTotals(es),
      first_access: first,
      last_access: last,
    })
  }
  rows.sort((a, b) => b.peak_rows_per_minute - a.peak_rows_per_minute || cmp(a.principal_id, b.principal_id))
  return { rows, peakMinutes, sources: sourcesOf(window) }
}

/** Rows as compared: times from ClickHouse's ISO text to microseconds. */
export function withMicros<T extends Record<string, unknown>>(rows: readonly T[], fields: readonly string[]): Record<string, unknown>[] {
  return rows.map((r) => {
    const out: Record<string, unknown> = { ...r }
    for (const f of fields) if (typeof out[f] === 'string') out[f] = isoToMicros(out[f])
    return out
  })
}
