export const fmtTime = (iso: string | null | undefined): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, 'Z') : '—');
export const fmtSec = (s: number | null | undefined): string => (s === null || s === undefined ? '—' : s < 60 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`);
export const fmtPct = (r: number | null | undefined): string => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)} %`);
export const fmtNum = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : n.toLocaleString('en-US'));
/** P for a provider-reported duration, D for one derived from event times. */
export const sourceMark = (s: 'provider' | 'derived' | null): string => (s === 'provider' ? 'P' : s === 'derived' ? 'D' : '');
