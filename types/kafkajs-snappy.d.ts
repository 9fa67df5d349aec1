// kafkajs-snappy ships no types: it exports a codec factory for kafkajs.
declare module 'kafkajs-snappy' {
  const createSnappyCodec: () => {
    compress(encoder: { buffer: Buffer }): Promise<Buffer>
    decompress(buffer: Buffer): Promise<Buffer>
  }
  export default createSnappyCodec
}
