import type { KeyObject } from 'node:crypto';
import {
  CheckpointSequenceChecker,
  compareWindowHeads,
  loadPublicKey,
  xidBefore,
  type CheckpointHead,
  type CheckpointProblem,
  type CheckpointRecord,
} from './checkpoint.js';
import { chainLinkOfLine } from './archive.js';
import { verifyStreamChain, type ArchivedRun, type StoredChainLink, type StreamHead } from './hash-chain.js';

export interface OfflineReport {
  valid: boolean;
  streamsChecked: number;
  eventsChecked: number;
  broken: { streamName: string; position: string | null; reason: string }[];
  checkpoints: { checked: number; signed: number; unsigned: number; signaturesChecked: boolean; problems: CheckpointProblem[] };
  /** Where the public key came from: the caller (meaningful), the export itself (proves nothing), or nowhere. */
  publicKeySource: 'argument' | 'export' | 'none';
  /** Events newer than the last checkpoint: chained, but not yet anchored by a signature. */
  eventsAfterLastCheckpoint: number;
  notes: string[];
}

interface Pending {
  name: string;
  head: StreamHead | null;
  links: StoredChainLink[];
  archived: ArchivedRun[];
}

/**
 * Verifies an audit export (`GET /v1/audit/export`) without a database: every chain recomputed and compared
 * with its head row, every checkpoint checked (sequence, digest, signature) and the heads it signed compared
 * with the heads recomputed from the exported events of its window. The export is read line by line; memory
 * holds one stream's events and the recomputed heads of the checkpointed windows.
 */
export const verifyAuditExport = async (lines: AsyncIterable<string> | Iterable<string>, options: { publicKey?: string } = {}): Promise<OfflineReport> => {
  const report: OfflineReport = {
    valid: false,
    streamsChecked: 0,
    eventsChecked: 0,
    broken: [],
    checkpoints: { checked: 0, signed: 0, unsigned: 0, signaturesChecked: false, problems: [] },
    publicKeySource: 'none',
    eventsAfterLastCheckpoint: 0,
    notes: [],
  };
  let key: KeyObject | null = options.publicKey ? loadPublicKey(options.publicKey) : null;
  if (key) report.publicKeySource = 'argument';
  let checker: CheckpointSequenceChecker | null = null;
  const checkpoints: (CheckpointRecord & { heads: CheckpointHead[] })[] = [];
  const windowHeads = new Map<number, Map<string, CheckpointHead>>();
  let pending: Pending | null = null;
  // Archived runs by stream (retention): signed checkpoint heads among them are the archive's to prove.
  const archivedRuns = new Map<string, ArchivedRun[]>();
  const isArchived = (streamName: string, version: number) => !!archivedRuns.get(streamName)?.some((r) => version >= r.firstVersion && version <= r.lastVersion);
  let sawHeader = false;
  let lineNo = 0;

  const finishStream = () => {
    if (!pending) return;
    report.streamsChecked += 1;
    const broken = verifyStreamChain(pending.links, pending.head, pending.archived);
    if (broken) report.broken.push({ streamName: pending.name, position: broken.position, reason: broken.reason });
    pending = null;
  };
  const windowOf = (xid: string): CheckpointRecord | null => {
    let lo = 0;
    let hi = checkpoints.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = checkpoints[mid]!;
      if (xidBefore(xid, c.fromXmin)) hi = mid - 1;
      else if (!xidBefore(xid, c.toXmin)) lo = mid + 1;
      else return c;
    }
    return null;
  };

  for await (const raw of lines) {
    lineNo += 1;
    if (raw.trim() === '') continue;
    // An export line is untrusted JSON whose fields are read as typed below; the hash chain and the
    // checkpoint signatures, not the types, are what vouch for them.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let o: Record<string, any>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      o = JSON.parse(raw) as Record<string, any>;
    } catch {
      report.broken.push({ streamName: '', position: null, reason: `line ${lineNo} is not JSON` });
      continue;
    }
    switch (o.kind) {
      case 'header':
        sawHeader = true;
        if (!key && o.publicKey) {
          key = loadPublicKey(String(o.publicKey));
          report.publicKeySource = 'export';
        }
        break;
      case 'checkpoint': {
        checker ??= new CheckpointSequenceChecker(key);
        const heads: CheckpointHead[] = (o.heads as [string, number, string][]).map(([streamName, version, hash]) => ({ streamName, version, hash }));
        const { kind: _k, heads: _h, ...rest } = o;
        const c = { ...(rest as CheckpointRecord), heads };
        checker.add(c, heads);
        checkpoints.push(c);
        windowHeads.set(c.seq, new Map());
        break;
      }
      case 'stream':
        finishStream();
        pending = {
          name: String(o.streamName),
          head: o.version === null ? null : { version: Number(o.version), lastHash: o.lastHash ? Buffer.from(String(o.lastHash), 'hex') : null },
          links: [],
          archived: ((o.archived ?? []) as [number, string | null, number, string, string][]).map(([firstVersion, prev, lastVersion, lastHash, month]) => ({
            firstVersion,
            prevHash: prev ? Buffer.from(prev, 'hex') : null,
            lastVersion,
            lastHash: Buffer.from(lastHash, 'hex'),
            month,
          })),
        };
        if (pending.archived.length) archivedRuns.set(pending.name, pending.archived);
        break;
      case 'event': {
        report.eventsChecked += 1;
        const link = chainLinkOfLine(o, o.actualBodySha256);
        if (!pending || pending.name !== link.streamName) {
          finishStream();
          pending = { name: link.streamName, head: null, links: [], archived: [] };
        }
        pending.links.push(link);
        const c = windowOf(String(o.transactionId));
        if (!c) {
          report.eventsAfterLastCheckpoint += 1;
          break;
        }
        const heads = windowHeads.get(c.seq)!;
        const prev = heads.get(link.streamName);
        if (!prev || prev.version < link.streamVersion) heads.set(link.streamName, { streamName: link.streamName, version: link.streamVersion, hash: link.hash.toString('hex') });
        break;
      }
      default:
        report.broken.push({ streamName: '', position: null, reason: `line ${lineNo} has an unknown kind` });
    }
  }
  finishStream();
  for (const c of checkpoints) {
    for (const d of compareWindowHeads(c.heads, [...windowHeads.get(c.seq)!.values()], isArchived)) {
      report.broken.push({ streamName: d.streamName, position: c.position, reason: `${d.reason} (checkpoint ${c.seq})` });
    }
  }
  if (checker) {
    report.checkpoints = { checked: checker.checked, signed: checker.signed, unsigned: checker.unsigned, signaturesChecked: key !== null, problems: checker.problems };
  }
  report.checkpoints.signaturesChecked = key !== null;
  if (!sawHeader) report.notes.push('no header line: this is not a complete audit export');
  if (report.publicKeySource === 'export') {
    report.notes.push('the public key was taken from the export itself: that proves nothing against whoever produced the export; pass --public-key with a key you obtained independently');
  }
  if (report.publicKeySource === 'none') report.notes.push('no public key: checkpoint signatures were not checked');
  if (checkpoints.length === 0) report.notes.push('no checkpoint: nothing anchors the chains outside the export');
  if (report.eventsAfterLastCheckpoint > 0) report.notes.push(`${report.eventsAfterLastCheckpoint} events are newer than the last checkpoint: chained, not yet anchored`);
  report.valid = report.broken.length === 0 && report.checkpoints.problems.length === 0;
  return report;
};
