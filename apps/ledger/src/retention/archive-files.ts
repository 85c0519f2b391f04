import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ARCHIVE_FILES, verifyArchive, type ArchiveFile, type FileDigest } from '@lib/event-store';

/** An NDJSON file written with its sha256, size and line count computed on the way. */
export class DigestingWriter {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private lines = 0;
  private buffer: string[] = [];
  private constructor(private readonly file: FileHandle) {}

  static async create(path: string): Promise<DigestingWriter> {
    return new DigestingWriter(await open(path, 'w'));
  }

  async write(o: unknown): Promise<void> {
    await this.writeLine(JSON.stringify(o));
  }

  /** One line as it is (a line an erasure did not change keeps its bytes). */
  async writeLine(text: string): Promise<void> {
    this.buffer.push(`${text}\n`);
    this.lines += 1;
    if (this.buffer.length >= 1000) await this.flush();
  }

  private async flush(): Promise<void> {
    const chunk = Buffer.from(this.buffer.join(''), 'utf8');
    this.buffer = [];
    this.hash.update(chunk);
    this.bytes += chunk.length;
    await this.file.write(chunk);
  }

  /** Flushed and synced to disk before the month's partitions may be dropped (or the file replace another). */
  async close(): Promise<FileDigest> {
    await this.flush();
    await this.file.sync();
    await this.file.close();
    return { sha256: this.hash.digest('hex'), bytes: this.bytes, lines: this.lines };
  }
}

/** The non-empty lines of an NDJSON file, read as a stream. */
export async function* ndjsonLines(path: string): AsyncIterable<string> {
  for await (const line of createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })) if (line.trim() !== '') yield line;
}

/** A folder's entry (a rename, a new file) is durable only once the folder itself is synced. */
export const syncDir = async (dir: string): Promise<void> => {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
};

/** A text file written to `<path>.next` and synced (a rewrite's new manifest). */
export const writeSynced = async (path: string, text: string): Promise<void> => {
  const h = await open(path, 'w');
  try {
    await h.write(text);
    await h.sync();
  } finally {
    await h.close();
  }
};

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Suffix of a rewrite's new files beside the month's files (archive-eraser.ts). */
export const NEXT = '.next';
export const MANIFEST = 'manifest.json';

/**
 * Makes a month's prepared files its files: the new manifest (`manifest.json.next`, written last, synced with its
 * folder) is the commit point. With it present every `.next` data file replaces its file, then the manifest; a
 * crash anywhere in there is finished by `recoverArchiveDir`, so a month is read either wholly old or wholly new.
 */
export const switchArchiveDir = async (dir: string): Promise<void> => {
  for (const f of ARCHIVE_FILES) if (await exists(join(dir, f + NEXT))) await rename(join(dir, f + NEXT), join(dir, f));
  await syncDir(dir);
  await rename(join(dir, MANIFEST + NEXT), join(dir, MANIFEST));
  await syncDir(dir);
};

/**
 * Finishes or undoes an interrupted rewrite of a month: with `manifest.json.next` present the rewrite had committed
 * and is finished (roll forward); without it, leftover `.next` files are removed (roll back).
 * @returns what was done, or null when the folder was clean
 */
export const recoverArchiveDir = async (dir: string): Promise<'finished' | 'undone' | null> => {
  if (await exists(join(dir, MANIFEST + NEXT))) {
    await switchArchiveDir(dir);
    return 'finished';
  }
  const stray = (await readdir(dir)).filter((f) => f.endsWith(NEXT));
  for (const f of stray) await unlink(join(dir, f));
  if (stray.length > 0) await syncDir(dir);
  return stray.length > 0 ? 'undone' : null;
};

export const digestOf = async (file: string): Promise<FileDigest> => {
  const hash = createHash('sha256');
  let bytes = 0;
  let lines = 0;
  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    hash.update(b);
    bytes += b.length;
    for (const c of b) if (c === 10) lines += 1;
  }
  return { sha256: hash.digest('hex'), bytes, lines };
};

/**
 * Verifies a month's files with no database (archive.ts `verifyArchive`): `npm run verify -- <folder>`, and an
 * erasure before it rewrites a month (the files as they are) and after (the `.next` files it is about to commit).
 */
export const verifyArchiveFiles = async (dir: string, manifestText: string, nameOf: (f: ArchiveFile) => string = (f) => f, publicKey?: string) => {
  const digests = {} as Record<ArchiveFile, FileDigest>;
  const files = {} as Record<ArchiveFile, () => AsyncIterable<string>>;
  for (const f of ARCHIVE_FILES) {
    digests[f] = await digestOf(join(dir, nameOf(f)));
    files[f] = () => ndjsonLines(join(dir, nameOf(f)));
  }
  return verifyArchive(manifestText, digests, files, { publicKey });
};
