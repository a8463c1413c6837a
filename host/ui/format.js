// Formatting of times, sizes and the API's vocabularies for display.
import { h } from './dom.js';

/** A `<time>` showing how long ago `iso` was, with the exact UTC time as its title. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return h('span', null, String(iso));
  return h('time', { datetime: iso, title: at.toISOString() }, relative(at));
}

export function relative(at, now = new Date()) {
  const seconds = Math.round((now.getTime() - at.getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  let text;
  if (s < 5) return 'just now';
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else text = `${Math.floor(s / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return null;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function percent(n) {
  return typeof n === 'number' && Number.isFinite(n) ? `${n.toFixed(1)} %` : null;
}

export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return null;
  const d = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d} d ${hours} h`;
  if (hours > 0) return `${hours} h ${m} min`;
  return `${m} min`;
}

/** Interval in words: "every 60 s", "every 5 min". */
export function cadence(seconds) {
  if (typeof seconds !== 'number') return null;
  if (seconds % 3600 === 0) return `every ${seconds / 3600} h`;
  if (seconds % 60 === 0 && seconds >= 120) return `every ${seconds / 60} min`;
  return `every ${seconds} s`;
}

const STATUS_LABELS = {
  pending: 'Pending',
  healthy: 'Healthy',
  degraded: 'Degraded',
  failing: 'Failing',
  disabled: 'Disabled',
  online: 'Online',
  offline: 'Offline',
  unknown: 'Unknown',
};

/** A status badge: the word itself carries the meaning, colour only repeats it. */
export function statusBadge(status) {
  const key = String(status ?? 'unknown');
  return h('span', { class: `badge status-${key}` }, STATUS_LABELS[key] ?? key);
}

/** What each failure category means, from the one vocabulary in the API. */
const CATEGORY_HINTS = {
  invalid_config: 'invalid configuration',
  auth: 'bad credentials',
  tls: 'certificate not trusted',
  network: 'unreachable',
  timeout: 'timed out',
  endpoint: 'not the expected API',
  unsupported: 'unsupported system',
  permission: 'missing privilege',
  protocol: 'unexpected response',
};

export function categoryBadge(category) {
  const hint = CATEGORY_HINTS[category];
  return h('span', { class: 'badge category', title: hint ?? null }, String(category ?? 'error'));
}

/** Resource types by their canonical names. */
export const TYPE_LABELS = { agent: 'Host', vm: 'Virtual machine', storage: 'Storage' };

export function typeLabel(type) {
  return TYPE_LABELS[type] ?? String(type);
}
