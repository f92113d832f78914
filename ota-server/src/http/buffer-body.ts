import { Readable } from 'node:stream'

/**
 * Bytes per write when an in-memory image is sent. Measured over TLS against nginx (bench/README.md,
 * OTA download): 256 KiB cost the least server CPU per byte.
 */
export const BODY_CHUNK_BYTES = 256 * 1024

function* slices(data: Buffer, size: number): Generator<Buffer> {
  for (let start = 0; start < data.length; start += size) yield data.subarray(start, start + size)
}

/**
 * A response body over `data` that hands it to the socket in `chunkSize` slices (views, no copy).
 *
 * Why not `reply.send(buffer)`: Fastify ends the response with `res.end(buffer)`, which corks the
 * socket so the headers and the body leave in one writev, and Node's TLS layer copies a multi-buffer
 * write into one new allocation before encrypting it; it then encrypts all of it into an in-memory
 * BIO before the first byte reaches the kernel. For a 1.5 MB image that is a 1.5 MB copy and 3 MB of
 * cold memory per response, and the client cannot start decrypting until the server has encrypted
 * everything. As a stream only the first slice shares a write (and that copy) with the headers; each
 * later slice is one buffer, encrypted and written while the client reads the previous one, through a
 * TLS buffer that stays the size of one slice. A device on a slow link also holds one slice of
 * ciphertext in the server instead of the whole image.
 */
export function bufferBody(data: Buffer, chunkSize = BODY_CHUNK_BYTES): Readable {
  // Object mode so that the slices are passed on as they are, never re-buffered or concatenated.
  return Readable.from(slices(data, chunkSize), { objectMode: true, highWaterMark: 1 })
}
