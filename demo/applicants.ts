/**
 * Fake applicants of a regional admissions registry (scenario 1 in
 * shared/SCENARIOS.md). Deterministic, so a demo run and a test see the same
 * people; all of it is invented.
 */
export interface Applicant {
  id: number
  full_name: string
  nationality: string
  birth_date: string
  phone: string
  email: string
  address: string
  applied_year: number
}

const FIRST = ['Anna', 'Luca', 'Sofia', 'Marco', 'Giulia', 'Matteo', 'Chiara', 'Paolo', 'Elena', 'Davide', 'Sara', 'Omar', 'Aisha', 'Ivan', 'Mei', 'Jonas']
const LAST = ['Rossi', 'Bianchi', 'Ferrari', 'Esposito', 'Romano', 'Colombo', 'Ricci', 'Marino', 'Greco', 'Bruno', 'Gallo', 'Conti', 'Haddad', 'Novak', 'Chen', 'Berg']
const NATIONALITY = ['IT', 'IT', 'IT', 'FR', 'DE', 'MA', 'RO', 'UA', 'CN', 'SE']
const STREETS = ['Via Roma', 'Corso Italia', 'Via Garibaldi', 'Piazza Duomo', 'Via Verdi', 'Viale Europa']

/** Small, seedable PRNG (mulberry32): the same seed gives the same registry. */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const FIRST_APPLICANT_ID = 100_001

export function generateApplicants(count: number, seed = 705_000): Applicant[] {
  const rnd = createRandom(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const people: Applicant[] = []
  for (let i = 0; i < count; i++) {
    const first = pick(FIRST)
    const last = pick(LAST)
    const year = 1985 + Math.floor(rnd() * 20)
    const month = 1 + Math.floor(rnd() * 12)
    const day = 1 + Math.floor(rnd() * 28)
    people.push({
      id: FIRST_APPLICANT_ID + i,
      full_name: `${first} ${last}`,
      nationality: pick(NATIONALITY),
      birth_date: `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
      phone: `+39 3${Math.floor(rnd() * 1e9).toString().padStart(9, '0')}`,
      email: `${first}.${last}${i}@example.org`.toLowerCase(),
      address: `${pick(STREETS)} ${1 + Math.floor(rnd() * 200)}, ${10000 + Math.floor(rnd() * 89999)}`,
      applied_year: 2008 + Math.floor(rnd() * 15),
    })
  }
  return people
}
