import { randomBytes } from 'node:crypto'
import mysql, { type Connection, type ConnectionOptions, type ExecuteValues } from 'mysql2/promise'
import { deferCleanup } from './cleanup.js'
import { createRandom } from '../../demo/applicants.js'

/** The MariaDB the integration tests run against (READTRAIL_MARIADB_HOST / _PORT / _USER / _PASSWORD). */
export function mariadbOptions(): ConnectionOptions {
  return {
    host: process.env['READTRAIL_MARIADB_HOST'] ?? '127.0.0.1',
    port: Number(process.env['READTRAIL_MARIADB_PORT'] ?? 3306),
    user: process.env['READTRAIL_MARIADB_USER'] ?? 'root',
    password: process.env['READTRAIL_MARIADB_PASSWORD'] ?? '',
  }
}

export interface Person {
  id: number
  full_name: string
  birth_date: string
  address: string
  phone: string
}

export interface HookDatabase {
  /** The fresh database's name (`rt_hook_<random>`). */
  database: string
  /** Connection options with `database` set; spread and extend them per test. */
  options: ConnectionOptions
  people: number
  cases: number
  /** (case_id, person_id) of every case_people row. */
  caseLinks: [number, number][]
}

const FIRST = ['Anna', 'Jonas', 'Mira', 'Lukas', 'Sofia', 'Elias', 'Lena', 'Noah', 'Clara', 'Felix', 'Ida', 'Oskar', 'Marta', 'Paul', 'Greta', 'Emil']
const LAST = ['Keller', 'Brandt', 'Novak', 'Lindqvist', 'Moreau', 'Rossi', 'Kowalski', 'Haas', 'Dubois', 'Jensen', 'Weber', 'Costa', 'Berg', 'Ivanova']
const STREETS = ['Lindenweg', 'Hafenstraße', 'Rue des Écoles', 'Via Roma', 'Mill Lane', 'Kirkegata', 'Ulica Długa']

/**
 * A fresh database with a realistic schema and deterministic fake people:
 * `people` (id PK), `cases`, `case_people` (composite PK, the join table)
 * and `people_import` (no primary key). Dropped when the file's tests end,
 * after the connections opened later (cleanups run newest first).
 */
export async function createHookDatabase(people = 3000, cases = 400): Promise<HookDatabase> {
  const database = `rt_hook_${randomBytes(6).toString('hex')}`
  const admin = await mysql.createConnection(mariadbOptions())
  const caseLinks: [number, number][] = []
  const drop = async (): Promise<void> => {
    const conn = await mysql.createConnection(mariadbOptions())
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${database}\``)
    } finally {
      await conn.end()
    }
  }
  deferCleanup(drop)
  try {
    await admin.query(`CREATE DATABASE \`${database}\``)
    await admin.changeUser({ database })
    await admin.query(`CREATE TABLE people (
      id INT UNSIGNED NOT NULL PRIMARY KEY,
      full_name VARCHAR(120) NOT NULL,
      birth_date DATE NOT NULL,
      address VARCHAR(200) NOT NULL,
      phone VARCHAR(32) NOT NULL,
      created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    )`)
    await admin.query(`CREATE TABLE cases (
      id INT UNSIGNED NOT NULL PRIMARY KEY,
      title VARCHAR(200) NOT NULL,
      opened_on DATE NOT NULL
    )`)
    await admin.query(`CREATE TABLE case_people (
      case_id INT UNSIGNED NOT NULL,
      person_id INT UNSIGNED NOT NULL,
      role VARCHAR(32) NOT NULL,
      note TEXT NULL,
      PRIMARY KEY (case_id, person_id),
      FOREIGN KEY (case_id) REFERENCES cases (id),
      FOREIGN KEY (person_id) REFERENCES people (id)
    )`)
    await admin.query('CREATE TABLE people_import (full_name VARCHAR(120), phone VARCHAR(32))')

    const rng = createRandom(20240611)
    const rows: Person[] = []
    for (let id = 1; id <= people; id++) {
      const born = new Date(Date.UTC(1940 + Math.floor(rng() * 65), Math.floor(rng() * 12), 1 + Math.floor(rng() * 28)))
      rows.push({
        id,
        full_name: `${pick(FIRST, rng)} ${pick(LAST, rng)}`,
        birth_date: born.toISOString().slice(0, 10),
        address: `${1 + Math.floor(rng() * 180)} ${pick(STREETS, rng)}`,
        phone: `+49 30 ${String(Math.floor(rng() * 1e7)).padStart(7, '0')}`,
      })
    }
    await insertRows(admin, 'people', ['id', 'full_name', 'birth_date', 'address', 'phone'], rows.map((p) => [p.id, p.full_name, p.birth_date, p.address, p.phone]))
    const caseRows: ExecuteValues[][] = []
    for (let id = 1; id <= cases; id++) caseRows.push([id, `Case ${id}: ${pick(['benefit claim', 'address change', 'complaint', 'records request'], rng)}`, `2024-0${1 + (id % 9)}-1${id % 10}`])
    await insertRows(admin, 'cases', ['id', 'title', 'opened_on'], caseRows)
    const linkRows: ExecuteValues[][] = []
    for (let caseId = 1; caseId <= cases; caseId++) {
      const members = new Set<number>()
      const count = 1 + Math.floor(rng() * 4)
      while (members.size < count) members.add(1 + Math.floor(rng() * people))
      for (const personId of members) {
        caseLinks.push([caseId, personId])
        linkRows.push([caseId, personId, pick(['applicant', 'witness', 'guardian', 'caseworker'], rng), rng() < 0.5 ? null : 'called back, documents pending'])
      }
    }
    await insertRows(admin, 'case_people', ['case_id', 'person_id', 'role', 'note'], linkRows)
    await insertRows(admin, 'people_import', ['full_name', 'phone'], rows.slice(0, 50).map((p) => [p.full_name, p.phone]))
  } finally {
    await admin.end()
  }
  return { database, options: { ...mariadbOptions(), database }, people, cases, caseLinks }
}

/** Multi-row INSERTs with server-side bound parameters, a few hundred rows per statement. */
async function insertRows(conn: Connection, table: string, columns: string[], rows: ExecuteValues[][]): Promise<void> {
  const perStatement = 400
  for (let i = 0; i < rows.length; i += perStatement) {
    const chunk = rows.slice(i, i + perStatement)
    const tuple = `(${columns.map(() => '?').join(', ')})`
    await conn.execute(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')}`, chunk.flat())
  }
}

function pick<T>(items: readonly T[], rng: () => number): T {
  return items[Math.floor(rng() * items.length)]!
}

