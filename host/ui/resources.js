// The resources view: every canonical resource (hosts, VMs, storage) from every connection,
// filtered by type, connection and text, paged with the API's cursors, and a detail panel.
// History, alerts and metric series are shown only where the server offers those endpoints.
import { api, ApiError, optional } from './api.js';
import { definitionList, h, replace, uid } from './dom.js';
import { bytes, duration, percent, statusBadge, time, typeLabel, TYPE_LABELS } from './format.js';

const PAGE_SIZES = [10, 25, 50, 100];
const RELATION_LABELS = { runsOn: 'Runs on', usesStorage: 'Uses storage', mountedOn: 'Mounted on', memberOf: 'Member of' };

/**
 * `platforms` are the descriptors (may be empty when the token cannot read settings);
 * `params` is the view's state from the address bar, `onParams` writes it back.
 */
export function resourcesView(platforms, params, onParams) {
  const headingId = uid('resources-heading');
  const state = {
    type: params.get('type') ?? '',
    connection: params.get('connection') ?? '',
    q: params.get('q') ?? '',
    limit: PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 25,
    open: params.get('open') ?? '',
  };
  let searchTimer = 0;
  /** Cursors of the pages before the current one; the current page's own cursor last. */
  let cursors = [null];
  let nextCursor = null;
  const connectionNames = new Map();

  // Types offered: those the registered providers project, or the canonical three.
  const types = [...new Set(platforms.flatMap((p) => p.projections ?? []))];
  const typeSelect = h('select', { id: uid('type'), name: 'type' },
    h('option', { value: '' }, 'All types'),
    (types.length ? types : Object.keys(TYPE_LABELS)).map((t) => h('option', { value: t, selected: t === state.type }, typeLabel(t))));
  const connectionSelect = h('select', { id: uid('connection'), name: 'connection' }, h('option', { value: '' }, 'All connections'));
  const search = h('input', { id: uid('q'), name: 'q', type: 'search', value: state.q, autocomplete: 'off', placeholder: 'Name or id' });
  const sizeSelect = h('select', { id: uid('limit'), name: 'limit' },
    PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === state.limit }, String(n))));
  const labelled = (text, control) => h('div', { class: 'filter' }, h('label', { for: control.id }, text), control);

  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter resources', method: 'post', onsubmit: (e) => { e.preventDefault(); apply(); } },
    labelled('Type', typeSelect),
    labelled('Connection', connectionSelect),
    labelled('Search', search),
    labelled('Per page', sizeSelect),
    h('button', { class: 'button', type: 'submit' }, 'Search'));
  for (const select of [typeSelect, connectionSelect, sizeSelect]) select.addEventListener('change', apply);
  search.addEventListener('input', () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(apply, 400);
  });

  const summary = h('p', { class: 'muted', role: 'status' });
  const problem = h('p', { class: 'notice error', role: 'alert', hidden: true });
  const tbody = h('tbody');
  const table = h('table', { class: 'resources' },
    h('caption', { class: 'visually-hidden' }, 'Resources'),
    h('thead', null, h('tr', null,
      ['Name', 'Type', 'Status', 'Connection'].map((c) => h('th', { scope: 'col' }, c)),
      h('th', { scope: 'col', class: 'optional' }, 'Location'),
      h('th', { scope: 'col', class: 'optional' }, 'Last seen'))),
    tbody);
  const firstButton = h('button', { class: 'button ghost', type: 'button', onclick: () => page(0) }, 'First');
  const prevButton = h('button', { class: 'button', type: 'button', onclick: () => page(cursors.length - 2) }, 'Previous');
  const nextButton = h('button', { class: 'button', type: 'button', onclick: () => page(cursors.length) }, 'Next');
  const pageLabel = h('span', { class: 'page-label' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Resource pages' }, firstButton, prevButton, pageLabel, nextButton);
  const detail = h('aside', { class: 'detail', id: uid('detail'), hidden: true, 'aria-label': 'Resource detail' });

  const element = h('section', { class: 'view resources-view', 'aria-labelledby': headingId },
    h('div', { class: 'view-head' }, h('h1', { id: headingId, tabindex: -1 }, 'Resources')),
    filters, problem,
    h('div', { class: 'resources-layout' },
      h('div', { class: 'resources-main' }, summary, h('div', { class: 'table-scroll' }, table), pager),
      detail));

  element.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !detail.hidden) {
      event.preventDefault();
      closeDetail();
    }
  });

  function apply() {
    window.clearTimeout(searchTimer);
    state.type = typeSelect.value;
    state.connection = connectionSelect.value;
    state.q = search.value.trim();
    state.limit = Number(sizeSelect.value);
    cursors = [null];
    save();
    load();
  }

  function save() {
    const out = new URLSearchParams();
    for (const key of ['type', 'connection', 'q', 'open']) if (state[key]) out.set(key, state[key]);
    if (state.limit !== 25) out.set('limit', String(state.limit));
    onParams(out);
  }

  function page(index) {
    if (index <= 0) cursors = [null];
    else if (index < cursors.length) cursors = cursors.slice(0, index + 1);
    else if (nextCursor) cursors = [...cursors, nextCursor];
    else return;
    load();
  }

  async function load() {
    const query = new URLSearchParams({ limit: String(state.limit) });
    if (state.type) query.set('type', state.type);
    if (state.connection) query.set('connection', state.connection);
    if (state.q) query.set('q', state.q);
    const cursor = cursors[cursors.length - 1];
    if (cursor) query.set('cursor', cursor);
    table.setAttribute('aria-busy', 'true');
    try {
      const answer = await api('GET', `/api/resources?${query}`);
      problem.hidden = true;
      nextCursor = answer.nextCursor ?? null;
      const items = answer.items ?? [];
      replace(tbody, items.length ? items.map(row) : h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'No resources match.')));
      const pageNumber = cursors.length;
      pageLabel.textContent = `Page ${pageNumber}`;
      firstButton.disabled = pageNumber === 1;
      prevButton.disabled = pageNumber === 1;
      nextButton.disabled = !nextCursor;
      summary.textContent = `${items.length} resource${items.length === 1 ? '' : 's'} on page ${pageNumber}${nextCursor ? '; more on the next page' : ''}.`;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      problem.textContent = error instanceof ApiError && error.code === 'validation_error'
        ? `Filter not accepted: ${Object.entries(error.fields).map(([k, v]) => `${k} ${v}`).join('; ')}`
        : `Could not load resources: ${error.message}`;
      problem.hidden = false;
    } finally {
      table.removeAttribute('aria-busy');
    }
  }

  function row(resource) {
    const open = resource.id === state.open;
    const topology = resource.topology ?? {};
    return h('tr', { dataset: { resourceId: resource.id }, class: open ? 'selected' : null },
      h('th', { scope: 'row' }, h('button', {
        class: 'link', type: 'button', 'aria-controls': detail.id, 'aria-expanded': String(open),
        dataset: { focusKey: `resource:${resource.id}` }, onclick: () => openDetail(resource.id),
      }, resource.name ?? resource.id)),
      h('td', null, typeLabel(resource.type)),
      h('td', null, statusBadge(resource.status)),
      h('td', null, connectionNames.get(resource.connectionId) ?? resource.connectionId),
      h('td', { class: 'optional' }, [topology.datacenter, topology.cluster].filter(Boolean).join(' / ')),
      h('td', { class: 'optional' }, time(resource.lastSeenAt)));
  }

  function markOpen() {
    for (const tr of tbody.querySelectorAll('tr[data-resource-id]')) {
      const open = tr.dataset.resourceId === state.open;
      tr.classList.toggle('selected', open);
      tr.querySelector('button')?.setAttribute('aria-expanded', String(open));
    }
  }

  async function openDetail(id) {
    state.open = id;
    save();
    markOpen();
    detail.hidden = false;
    replace(detail, h('p', { class: 'muted' }, 'Loading…'));
    let resource;
    try {
      resource = await api('GET', `/api/resources/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      replace(detail, closeButton(), h('p', { class: 'notice error', role: 'alert' },
        error.status === 404 ? 'This resource no longer exists.' : `Could not load it: ${error.message}`));
      return;
    }
    if (state.open !== id) return;
    renderDetail(resource);
  }

  function closeButton() {
    return h('button', { class: 'button ghost close', type: 'button', onclick: closeDetail, 'aria-label': 'Close detail' }, 'Close');
  }

  function closeDetail() {
    const id = state.open;
    state.open = '';
    save();
    detail.hidden = true;
    replace(detail);
    markOpen();
    tbody.querySelector(`[data-focus-key="${CSS.escape(`resource:${id}`)}"]`)?.focus();
  }

  function renderDetail(resource) {
    const titleId = uid('detail-title');
    const metrics = resource.metrics ?? {};
    const details = resource.details ?? {};
    const history = h('div', { class: 'optional-section' });
    const alerts = h('div', { class: 'optional-section' });
    const series = h('div', { class: 'optional-section' });
    const section = (title, ...content) => {
      const body = content.filter(Boolean);
      return body.length ? h('section', { class: 'detail-section' }, h('h3', null, title), body) : null;
    };
    replace(detail,
      h('div', { class: 'detail-head' },
        h('h2', { id: titleId, tabindex: -1 }, resource.name ?? resource.id),
        closeButton()),
      h('p', null, statusBadge(resource.status), ' ', typeLabel(resource.type)),
      definitionList([
        ['Id', h('code', null, resource.id)],
        ['Platform', resource.platform],
        ['Connection', connectionNames.get(resource.connectionId) ?? resource.connectionId],
        ['Last seen', time(resource.lastSeenAt)],
      ]),
      section('Relations', relations(resource.relations ?? [])),
      section('Topology', definitionList([
        ['Datacenter', resource.topology?.datacenter],
        ['Cluster', resource.topology?.cluster],
        ['Folder', resource.topology?.folder],
        ['Resource pool', resource.topology?.resourcePool],
      ])),
      section('Latest metrics', definitionList([
        ['CPU', percent(metrics.cpuPercent)],
        ['Memory', usage(metrics.memoryUsedBytes, metrics.memoryTotalBytes)],
        ['Disk', usage(metrics.diskUsedBytes, metrics.diskTotalBytes)],
        ['Uptime', duration(metrics.uptimeSeconds)],
      ])),
      section('Details', detailList(details)),
      details.snapshots ? section('Snapshots', snapshotTree(details.snapshots)) : null,
      section('Identity', definitionList(Object.entries(resource.identity ?? {}).map(([k, v]) => [k, scalar(v)]))),
      series, history, alerts);
    detail.setAttribute('aria-labelledby', titleId);
    detail.querySelector('h2')?.focus();
    if (window.matchMedia('(max-width: 1099px)').matches) detail.scrollIntoView({ block: 'start' });
    fillOptional(resource, { history, alerts, series });
  }

  function relations(list) {
    if (list.length === 0) return null;
    const ul = h('ul', { class: 'relations' });
    for (const relation of list) {
      const target = h('button', { class: 'link', type: 'button', onclick: () => openDetail(relation.target) }, relation.target);
      ul.append(h('li', null, h('span', { class: 'relation-kind' }, RELATION_LABELS[relation.kind] ?? relation.kind), ' ', target));
      // Show the target's name once known; the id stays the fallback.
      api('GET', `/api/resources/${encodeURIComponent(relation.target)}`)
        .then((other) => {
          target.textContent = `${other.name} (${typeLabel(other.type)})`;
        })
        .catch(() => {});
    }
    return ul;
  }

  /** History, alerts and metric series: only when the server has those endpoints. */
  async function fillOptional(resource, slots) {
    const id = encodeURIComponent(resource.id);
    const guard = (promise, slot, title, render) => promise
      .then((answer) => {
        if (answer === null || state.open !== resource.id) return;
        replace(slot, h('section', { class: 'detail-section', dataset: { section: title.toLowerCase() } }, h('h3', null, title), render(answer)));
      })
      .catch((error) => {
        if (error instanceof ApiError && error.status === 401) return;
        replace(slot, h('section', { class: 'detail-section' }, h('h3', null, title),
          h('p', { class: 'notice error' }, `Could not load: ${error.message}`)));
      });
    await Promise.all([
      guard(optional('GET', `/api/resources/${id}/metrics`), slots.series, 'Metric history', metricSeries),
      guard(optional('GET', `/api/resources/${id}/history?limit=20`), slots.history, 'History', historyList),
      guard(optional('GET', `/api/alerts?resource=${id}&limit=100`).then((answer) => (answer === null ? null
        : answer.items ?? [])), slots.alerts, 'Alerts', alertList),
    ]);
  }

  async function loadConnectionNames() {
    const groups = await Promise.all(platforms.map(async (platform) => {
      try {
        const list = await api('GET', `/api/${encodeURIComponent(platform.slug)}/connections`);
        return [platform, Array.isArray(list) ? list : []];
      } catch {
        // Without settings:read the filter offers only "all"; resources still list.
        return [platform, []];
      }
    }));
    for (const [platform, list] of groups) {
      if (list.length === 0) continue;
      for (const item of list) connectionNames.set(item.id, item.name);
      connectionSelect.append(h('optgroup', { label: platform.displayName },
        list.map((item) => h('option', { value: item.id, selected: item.id === state.connection }, item.name))));
    }
  }

  let started = false;
  /** The first call loads connection names and the page; later calls reload the page. */
  async function refresh() {
    if (started) {
      await load();
      return;
    }
    started = true;
    await loadConnectionNames();
    await load();
    if (state.open) openDetail(state.open);
  }

  return { element, refresh, nextRefreshMs: () => null };
}

function usage(used, total) {
  if (typeof used !== 'number' && typeof total !== 'number') return null;
  if (typeof total !== 'number') return bytes(used);
  if (typeof used !== 'number') return `${bytes(total)} total`;
  return `${bytes(used)} of ${bytes(total)}`;
}

function scalar(value) {
  if (Array.isArray(value)) return value.map(scalar).join(', ');
  if (value && typeof value === 'object') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return value === undefined || value === null ? null : String(value);
}

const BYTE_KEYS = /Bytes$/;

function detailList(details) {
  const pairs = Object.entries(details)
    .filter(([key]) => key !== 'snapshots')
    .map(([key, value]) => [key.replace(/([A-Z])/g, ' $1').toLowerCase(),
      BYTE_KEYS.test(key) && typeof value === 'number' ? bytes(value) : scalar(value)]);
  return definitionList(pairs);
}

/**
 * The snapshot tree. Accepts a list of nodes or an object holding one (`rootSnapshotList`,
 * `tree`, `items`); children under `children` or `childSnapshotList`.
 */
function snapshotTree(snapshots) {
  const roots = Array.isArray(snapshots) ? snapshots
    : snapshots?.rootSnapshotList ?? snapshots?.tree ?? snapshots?.items ?? [];
  const current = Array.isArray(snapshots) ? null : snapshots?.current ?? snapshots?.currentSnapshot ?? null;
  const node = (snap) => {
    const children = snap.children ?? snap.childSnapshotList ?? [];
    const isCurrent = snap.current === true || (current && (snap.id === current || snap.name === current));
    const when = snap.createdAt ?? snap.createTime;
    return h('li', null,
      h('span', { class: 'snapshot-name' }, snap.name ?? snap.id ?? 'snapshot'),
      isCurrent ? h('span', { class: 'badge' }, 'current') : null,
      when ? [' ', time(when)] : null,
      snap.description ? h('span', { class: 'muted' }, ` ${snap.description}`) : null,
      children.length ? h('ul', null, children.map(node)) : null);
  };
  if (!Array.isArray(roots) || roots.length === 0) return h('p', { class: 'muted' }, 'No snapshots.');
  return h('ul', { class: 'snapshot-tree' }, roots.map(node));
}

function historyList(answer) {
  const items = answer.items ?? [];
  if (items.length === 0) return h('p', { class: 'muted' }, 'No events or tasks recorded.');
  return h('ul', { class: 'history' }, items.map((entry) => h('li', null,
    time(entry.at), ' ', h('span', { class: 'badge' }, entry.kind ?? 'event'), ' ',
    entry.message ?? entry.type ?? '', entry.user ? h('span', { class: 'muted' }, ` by ${entry.user}`) : null)));
}

function alertList(alerts) {
  if (alerts.length === 0) return h('p', { class: 'muted' }, 'No alerts.');
  return h('ul', { class: 'alerts' }, alerts.map((alert) => h('li', null,
    h('span', { class: `badge severity-${alert.severity}` }, alert.severity), ' ',
    h('strong', null, alert.name), ' ', alert.message ?? '',
    h('span', { class: 'muted' }, ' since ', time(alert.since), alert.state === 'resolved' ? ', resolved' : ''))));
}

function metricSeries(answer) {
  const list = answer.series ?? [];
  if (list.length === 0) return h('p', { class: 'muted' }, 'No samples yet.');
  return h('table', { class: 'series' },
    h('thead', null, h('tr', null, ['Metric', 'Trend', 'Latest', 'Samples'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, list.map((s) => {
      const points = s.points ?? [];
      const last = points[points.length - 1];
      return h('tr', null, h('th', { scope: 'row' }, s.metric), h('td', null, sparkline(points, s.metric)),
        h('td', null, last ? metricValue(last[1], s.unit) : '—'), h('td', null, String(points.length)));
    })));
}

/** A value in its canonical unit, as a person reads it. */
function metricValue(value, unit) {
  if (unit === 'percent') return percent(value);
  if (unit === 'bytes') return bytes(value);
  if (unit === 'bytesPerSecond') return `${bytes(value)}/s`;
  return String(value);
}

const SVG = 'http://www.w3.org/2000/svg';

/** The series' shape as a small inline SVG line (no script, no styles: allowed by the CSP). */
function sparkline(points, label) {
  const values = points.map((p) => Number(p[1])).filter((v) => Number.isFinite(v));
  if (values.length < 2) return h('span', { class: 'muted' }, '—');
  const width = 120;
  const height = 24;
  const min = Math.min(...values);
  const span = Math.max(...values) - min || 1;
  const coords = values.map((v, i) => `${((i / (values.length - 1)) * width).toFixed(1)},${(height - ((v - min) / span) * height).toFixed(1)}`);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${label}: ${values.length} samples`);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', coords.join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('stroke-width', '1.5');
  svg.append(line);
  return svg;
}

