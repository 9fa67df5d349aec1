import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll } from 'vitest'

/** The PostgreSQL server running on this machine (trust auth on 127.0.0.1). */
export const PG_CONNECTION = Object.freeze({
  host: process.env['PGHOST'] ?? '127.0.0.1',
  port: Number(process.env['PGPORT'] ?? 5432),
  user: process.env['PGUSER'] ?? 'postgres',
  password: process.env['PGPASSWORD'] ?? '',
})

export const PATIENT_COUNT = 3000

/**
 * A fresh database holding a medical practice's records (scenario 2 in
 * ../shared/SCENARIOS.md), all fake: patients with the columns a breach
 * exposes, doctors, and a join table with a composite primary key. Dropped
 * when the file's tests end.
 */
export async function createPracticeDatabase(): Promise<string> {
  const database = `rt_hook_${randomUUID().replace(/-/g, '').slice(0, 10)}`
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
    CREATE TABLE patients (
      id bigint PRIMARY KEY,
      full_name text NOT NULL,
      birth_date date NOT NULL,
      address text NOT NULL,
      phone text NOT NULL,
      religion text
    );
    CREATE TABLE doctors (id int PRIMARY KEY, full_name text NOT NULL);
    CREATE TABLE treatments (
      doctor_id int NOT NULL REFERENCES doctors(id),
      patient_id bigint NOT NULL REFERENCES patients(id),
      diagnosis text NOT NULL,
      PRIMARY KEY (doctor_id, patient_id)
    );
    CREATE TABLE notes_without_key (patient_id bigint, body text);
    INSERT INTO patients
      SELECT 100000 + g, 'Patient ' || g, DATE '1940-01-01' + (g * 7) % 25000, g || ' Harbour Street', '+33 6 ' || lpad(g::text, 8, '0'),
             (ARRAY['none', 'catholic', 'muslim', 'jewish', NULL])[1 + g % 5]
      FROM generate_series(1, ${PATIENT_COUNT}) g;
    INSERT INTO doctors SELECT g, 'Dr ' || g FROM generate_series(1, 20) g;
    INSERT INTO treatments SELECT 1 + g % 20, 100000 + g, 'code-' || (g % 97) FROM generate_series(1, ${PATIENT_COUNT}, 3) g;
    INSERT INTO notes_without_key SELECT 100000 + g, 'note ' || g FROM generate_series(1, 50) g;
  `)
  await client.end()
  return database
}
