import { describe, expect, it } from 'vitest'
import { closestMatches, didYouMean, editDistance } from '../../common/suggest.js'

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and adjacent swaps as one edit each', () => {
    expect(editDistance('table', 'table')).toBe(0)
    expect(editDistance('tabel', 'table')).toBe(1)
    expect(editDistance('verfy', 'verify')).toBe(1)
    expect(editDistance('workrs', 'workers')).toBe(1)
    expect(editDistance('', 'abc')).toBe(3)
    expect(editDistance('kitten', 'sitting')).toBe(3)
  })
})

describe('closestMatches', () => {
  const params = ['principal', 'table', 'from', 'to', 'limit']

  it('suggests the parameter a typo meant', () => {
    expect(closestMatches('tabel', params)).toEqual(['table'])
    expect(closestMatches('principle', params)).toEqual(['principal'])
    expect(closestMatches('form', params)).toEqual(['from'])
  })

  it('suggests nothing for an unrelated word, and never turns a short word into another', () => {
    expect(closestMatches('colour', params)).toEqual([])
    expect(closestMatches('x', ['to', 'ip'])).toEqual([])
  })

  it('takes a prefix as meant (--since for --since-checkpoint)', () => {
    expect(closestMatches('since', ['since-checkpoint', 'skip-views'])).toEqual(['since-checkpoint'])
  })

  it('orders by distance, ties in the order given', () => {
    expect(closestMatches('breach-scop', ['breach-records', 'breach-scope', 'breach-timeline'])).toEqual(['breach-scope'])
  })
})

describe('didYouMean', () => {
  it('renders the candidates, or nothing', () => {
    expect(didYouMean('verfy', ['verify', 'query'])).toBe(' (did you mean verify?)')
    expect(didYouMean('workrs', ['workers'], (n) => `--${n}`)).toBe(' (did you mean --workers?)')
    expect(didYouMean('zzz', ['verify'])).toBe('')
  })
})
