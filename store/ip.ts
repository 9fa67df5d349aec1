import { isIP } from 'node:net'

/**
 * 16 bytes in network order, as ClickHouse stores IPv6; IPv4 becomes
 * ::ffff:a.b.c.d so one column holds both families.
 */
export function ipToIPv6Bytes(ip: string): Buffer {
  const family = isIP(ip)
  const out = Buffer.alloc(16)
  if (family === 4) {
    out[10] = 0xff
    out[11] = 0xff
    ip.split('.').forEach((part, i) => (out[12 + i] = Number(part)))
    return out
  }
  if (family !== 6) throw new RangeError(`not an IP address: ${JSON.stringify(ip)}`)
  let text = ip
  const zone = text.indexOf('%')
  if (zone >= 0) text = text.slice(0, zone)
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined]
  const headGroups = head ? head.split(':') : []
  const tailGroups = tail ? tail.split(':') : []
  const groups =
    tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}
