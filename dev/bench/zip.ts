/**
 * Just enough ZIP for the benchmark, on node:zlib: list and extract the entries of a deployment package
 * (stored or deflated, no ZIP64), and estimate the size of a package that `sls package` would write.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  size: number;
  compressedSize: number;
  data(): Buffer;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export function readZip(file: string): ZipEntry[] {
  const zip = readFileSync(file);
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file} is not a zip file`);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== CENTRAL) throw new Error(`${file}: bad central directory`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localAt = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    entries.push({
      name,
      size,
      compressedSize,
      data() {
        if (zip.readUInt32LE(localAt) !== LOCAL) throw new Error(`${file}: bad local header for ${name}`);
        const start = localAt + 30 + zip.readUInt16LE(localAt + 26) + zip.readUInt16LE(localAt + 28);
        const raw = zip.subarray(start, start + compressedSize);
        if (method === 0) return Buffer.from(raw);
        if (method === 8) return inflateRawSync(raw);
        throw new Error(`${file}: ${name} uses compression method ${method}`);
      },
    });
  }
  return entries;
}

/** Extracts every file entry under `dir`; returns the total uncompressed size. */
export function extractZip(file: string, dir: string): number {
  let total = 0;
  for (const entry of readZip(file)) {
    if (entry.name.endsWith('/')) continue;
    const target = normalize(join(dir, entry.name));
    if (!target.startsWith(normalize(dir))) throw new Error(`${file}: entry ${entry.name} leaves the folder`);
    mkdirSync(dirname(target), { recursive: true });
    const data = entry.data();
    writeFileSync(target, data);
    total += data.length;
  }
  return total;
}

/**
 * The size of a zip holding these files as serverless-esbuild writes it (archiver: deflate at zlib level 1,
 * a data descriptor per entry); measured equal to its output within a few bytes.
 */
export function estimateZipSize(files: ReadonlyArray<{ name: string; data: Uint8Array }>, level = 1): number {
  let size = 22;
  for (const file of files) {
    const name = Buffer.byteLength(file.name);
    size += 30 + name + deflateRawSync(file.data, { level }).length + 16 + 46 + name;
  }
  return size;
}
