import t from 'tap'
import { randomBytes } from 'node:crypto'
import { bufferBody } from './buffer-body.js'

async function collect(body: AsyncIterable<unknown>): Promise<Buffer[]> {
  const out: Buffer[] = []
  for await (const chunk of body) out.push(chunk as Buffer)
  return out
}

t.test('hands the buffer over in slices of at most chunkSize, in order, as views of the same memory', async (t) => {
  const data = randomBytes(10_000)
  const chunks = await collect(bufferBody(data, 4096))
  t.same(chunks.map((c) => c.length), [4096, 4096, 1808])
  t.ok(Buffer.concat(chunks).equals(data), 'the slices add up to the buffer')
  // A view, not a copy: the point of the module is that no byte is copied before TLS encrypts it.
  t.equal(chunks[1]!.buffer, data.buffer)
  t.equal(chunks[1]!.byteOffset, data.byteOffset + 4096)
})

t.test('a buffer no longer than one slice is one chunk; an empty one ends at once', async (t) => {
  const data = randomBytes(100)
  const one = await collect(bufferBody(data, 4096))
  t.equal(one.length, 1)
  t.ok(one[0]!.equals(data))
  t.same(await collect(bufferBody(Buffer.alloc(0))), [])
})
