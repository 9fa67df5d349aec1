import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll } from 'vitest'
import { PG_CONNECTION } from './postgres.js'

/**
 * Scenario 1 (../shared/SCENARIOS.md): a regional admissions registry of
 * former applicants, all fake, in a fresh database dropped when the file's
 * tests end. Ids run from 1 to `applicants`.
 */
export async function createRegistryDatabase(applicants: number): Promise<string> {
  const database = `rt_guard_${randomUUID().replace(/-/g, '').slice(0, 10)}`
  const admin = new pg.Client({ ...PG_CONNECTION, database: 'postgres' })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${database}`)
  await admin.end()
  afterAll(async () => {
    const drop = new pg.Client({ ...PG_CONNECTION, database: 'postgres' })
    await drop.connect()
    await drop.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await drop.end()
  })
  const client = new pg.Client({ ...PG_CONNECTION, database })
  await client.connect()
  await client.query(`
    CREATE TABLE applicants (id bigint PRIMARY KEY, full_name text, nationality text, birth_date date, phone text, postal_address text, email text);
    INSERT INTO applicants SELECT g, 'Applicant ' || g, (ARRAY['FR','IT','MA','SN','VN'])[1 + g % 5], DATE '1970-01-01' + g * 37, '+33 6 ' || lpad(g::text, 8, '0'), g || ' rue des Lilas', 'applicant' || g || '@example.org'
      FROM generate_series(1, ${applicants}) g;
  `)
  await client.end()
  return database
}
