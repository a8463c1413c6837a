// A provider's tab: its saved connections with health and what each contributes, and the
// dialogs to add, edit, test and delete them. Everything provider-specific comes from the
// descriptor, so the same code serves every registered provider.
import { api, ApiError } from './api.js';
import { announce, definitionList, h, replace, richText, uid } from './dom.js';
import { cadence, categoryBadge, statusBadge, time } from './format.js';
import { COMMON_FIELDS, schemaForm } from './form.js';

/** How often the list is re-read: quickly while a poll result is awaited, calmly otherwise. */
const FAST_REFRESH_MS = 2000;
const SLOW_REFRESH_MS = 10000;

export function providerView(descriptor) {
  const base = `/api/${encodeURIComponent(descriptor.slug)}/connections`;
  const headingId = uid('provider-heading');
  const list = h('div', { class: 'connection-list', 'aria-live': 'off' });
  const listError = h('p', { class: 'notice error', role: 'alert', hidden: true });
  /** Latest re-test outcome per connection id, kept across re-renders. */
  const testResults = new Map();
  let items = [];
  let rendered = '';
  /** Ids whose next poll result is awaited (just saved, enabled or re-tested). */
  const awaiting = new Set();

  const addButton = h('button', { class: 'button primary', type: 'button', onclick: () => openForm(null, addButton) },
    'Add connection');
  const refreshButton = h('button', { class: 'button ghost', type: 'button', onclick: () => refresh(true) }, 'Refresh');

  const element = h('section', { class: 'view provider', 'aria-labelledby': headingId },
    h('div', { class: 'view-head' },
      h('h1', { id: headingId, tabindex: -1 }, descriptor.displayName),
      h('div', { class: 'toolbar' }, refreshButton, addButton)),
    h('p', { class: 'lead' }, richText(descriptor.description)),
    aboutProvider(descriptor),
    listError,
    list);

  async function refresh(announceDone = false) {
    try {
      const answer = await api('GET', base);
      items = Array.isArray(answer) ? answer : [];
      listError.hidden = true;
      for (const item of items) {
        if (item.poll?.status !== 'pending' && item.observed?.collectedAt) awaiting.delete(item.id);
      }
      const snapshot = JSON.stringify([items, [...testResults]]);
      if (snapshot !== rendered) {
        rendered = snapshot;
        render();
      } else {
        refreshTimes(list);
      }
      if (announceDone) announce(`${items.length} connection${items.length === 1 ? '' : 's'} loaded`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      listError.textContent = `Could not load connections: ${error.message}`;
      listError.hidden = false;
    }
  }

  function nextRefreshMs() {
    const busy = awaiting.size > 0 || items.some((i) => i.poll?.status === 'pending');
    return busy ? FAST_REFRESH_MS : SLOW_REFRESH_MS;
  }

  function render() {
    // Re-rendering replaces the buttons; keep keyboard focus on the same action.
    const focusKey = document.activeElement?.dataset?.focusKey;
    if (items.length === 0) {
      replace(list, h('p', { class: 'empty' }, `No ${descriptor.displayName} connections yet. Add one to start.`));
    } else {
      replace(list, items.map(card));
    }
    if (focusKey) list.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  function card(item) {
    const nameId = uid('conn-name');
    const poll = item.poll ?? {};
    const status = poll.status ?? 'pending';
    const endpoint = [item.host, item.port].filter((v) => v !== undefined && v !== null && v !== '').join(':');
    const action = (label, key, handler, extra = {}) => h('button', {
      class: `button ${extra.class ?? ''}`, type: 'button', dataset: { focusKey: `${item.id}:${key}`, action: key },
      'aria-label': `${label} ${item.name}`, onclick: (event) => handler(event.currentTarget),
    }, label);

    return h('article', { class: 'card connection', 'aria-labelledby': nameId, dataset: { id: item.id, status } },
      h('header', { class: 'card-head' },
        h('h2', { id: nameId }, item.name),
        statusBadge(status),
        endpoint ? h('span', { class: 'endpoint' }, endpoint) : null),
      h('div', { class: 'card-body' },
        h('section', { class: 'health', 'aria-label': `Poll health of ${item.name}` },
          definitionList([
            ['Cadence', cadence(poll.intervalSeconds ?? item.pollIntervalSeconds)],
            ['Last success', time(poll.lastSuccessAt)],
            ['Last attempt', time(poll.lastAttemptAt)],
            ['Consecutive failures', poll.consecutiveFailures > 0 ? String(poll.consecutiveFailures) : null],
          ]),
          poll.lastError ? h('div', { class: 'last-error' },
            h('span', { class: 'label' }, 'Last error'), ' ',
            categoryBadge(poll.lastError.category), ' ',
            h('span', { class: 'message' }, richText(poll.lastError.message)), ' ',
            h('span', { class: 'muted' }, '(', time(poll.lastError.at), ')')) : null),
        observedSummary(item)),
      testOutcome(testResults.get(item.id)),
      h('div', { class: 'actions' },
        action('Re-test', 'retest', (button) => retest(item, button)),
        action('Edit', 'edit', (button) => openForm(item, button)),
        action(item.enabled ? 'Disable' : 'Enable', 'toggle', (button) => toggle(item, button)),
        action('Delete', 'delete', (button) => confirmDelete(item, button), { class: 'danger' })));
  }

  function observedSummary(item) {
    const observed = item.observed;
    if (!observed) {
      return h('section', { class: 'observed', 'aria-label': `Observed by ${item.name}` },
        h('p', { class: 'muted' }, 'Nothing observed yet: the first successful poll fills this in.'));
    }
    const system = observed.system;
    const topology = observed.topology ?? {};
    const count = (key, label) => [label, h('span', { dataset: { count: key } }, String(observed[key] ?? 0))];
    return h('section', { class: 'observed', 'aria-label': `Observed by ${item.name}` },
      system ? h('p', { class: 'system', title: system.product || null },
        h('strong', null, system.name),
        system.version ? ` ${system.version}` : null,
        system.build ? h('span', { class: 'muted' }, ` (build ${system.build})`) : null,
        system.instanceUuid ? h('span', { class: 'muted uuid' }, ` · ${system.instanceUuid}`) : null) : null,
      h('dl', { class: 'counts' }, [count('agents', 'Hosts'), count('vms', 'VMs'), count('storage', 'Storage')]
        .map(([term, value]) => h('div', null, h('dt', null, term), h('dd', null, value)))),
      definitionList([
        ['Topology', topologyText(topology)],
        ['Collected', time(observed.collectedAt)],
      ]),
      Array.isArray(observed.issues) && observed.issues.length > 0
        ? h('div', { class: 'issues' }, h('p', { class: 'label' }, 'Partial poll'),
          h('ul', null, observed.issues.map((issue) => h('li', null,
            categoryBadge(issue.category), ' ', `${issue.stage}: `, richText(issue.message),
            issue.occurrences > 1 ? ` (×${issue.occurrences})` : ''))))
        : null);
  }

  async function retest(item, button) {
    button.disabled = true;
    testResults.set(item.id, { pending: true });
    render();
    try {
      // No body: the stored secret is reused and the outcome becomes the stored health.
      const result = await api('POST', `${base}/${encodeURIComponent(item.id)}/test`);
      testResults.set(item.id, result);
      announce(`${item.name}: ${result.success ? 'test succeeded' : `test failed (${result.category})`}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      testResults.set(item.id, { success: false, category: error.code, message: error.message });
    }
    await refresh();
  }

  async function toggle(item, button) {
    button.disabled = true;
    try {
      await api('PUT', `${base}/${encodeURIComponent(item.id)}`, { enabled: !item.enabled });
      if (!item.enabled) awaiting.add(item.id);
      announce(`${item.name} ${item.enabled ? 'disabled' : 'enabled'}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      listError.textContent = `Could not change ${item.name}: ${error.message}`;
      listError.hidden = false;
    }
    await refresh();
  }

  function confirmDelete(item, opener) {
    const titleId = uid('confirm-title');
    const problem = h('p', { class: 'notice error', role: 'alert', hidden: true });
    const cancel = h('button', { class: 'button', type: 'button', onclick: () => dialog.close() }, 'Cancel');
    const confirm = h('button', { class: 'button danger', type: 'button', onclick: remove }, 'Delete');
    const dialog = h('dialog', { class: 'dialog confirm', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, `Delete “${item.name}”?`),
      h('p', null, 'Polling stops and the resources this connection contributed are removed. This cannot be undone.'),
      problem,
      h('div', { class: 'actions' }, cancel, confirm));

    async function remove() {
      confirm.disabled = true;
      try {
        await api('DELETE', `${base}/${encodeURIComponent(item.id)}`);
        testResults.delete(item.id);
        dialog.close();
        announce(`${item.name} deleted`);
        await refresh();
        element.querySelector('h1')?.focus();
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return;
        problem.textContent = error.message;
        problem.hidden = false;
        confirm.disabled = false;
      }
    }
    showDialog(dialog, opener);
    // The safe choice has the focus.
    cancel.focus();
  }

  function openForm(item, opener) {
    const editing = Boolean(item);
    const titleId = uid('form-title');
    const fields = [...COMMON_FIELDS, ...(descriptor.fields ?? [])];
    const form = schemaForm(fields, item);
    const alert = h('div', { class: 'notice error', role: 'alert', tabindex: -1, hidden: true });
    const result = h('div', { class: 'form-result', role: 'status', 'aria-live': 'polite' });
    const testButton = h('button', { class: 'button', type: 'button', onclick: runTest }, 'Test connection');
    const saveButton = h('button', { class: 'button primary', type: 'submit' }, editing ? 'Save changes' : 'Save');
    const cancelButton = h('button', { class: 'button ghost', type: 'button', onclick: () => dialog.close() }, 'Cancel');
    const formEl = h('form', { method: 'post', novalidate: true, onsubmit: save },
      h('h2', { id: titleId }, editing ? `Edit “${item.name}”` : `Add ${descriptor.displayName} connection`),
      editing ? h('p', { class: 'muted' }, 'Stored secrets are never shown; leave a secret empty to keep it.') : null,
      alert,
      form.element,
      result,
      h('div', { class: 'actions' }, testButton, h('span', { class: 'spacer' }), cancelButton, saveButton));
    const dialog = h('dialog', { class: 'dialog form-dialog', 'aria-labelledby': titleId }, formEl);

    function busy(on) {
      for (const button of [testButton, saveButton]) button.disabled = on;
      formEl.setAttribute('aria-busy', String(on));
    }

    function showProblem(error) {
      form.clearErrors();
      alert.hidden = true;
      if (error instanceof ApiError && error.status === 401) return;
      let unplaced = [];
      if (error instanceof ApiError && error.code === 'validation_error') {
        unplaced = form.showErrors(error.fields);
        if (unplaced.length === 0) {
          announce('Please correct the highlighted fields.');
          return;
        }
      } else if (error instanceof ApiError && error.status === 409) {
        // Names are unique per platform; a conflict is always about the name.
        form.showErrors({ name: error.message });
        return;
      }
      replace(alert, h('p', null, error.message), unplaced.length ? h('ul', null, unplaced.map((u) => h('li', null, u))) : null);
      alert.hidden = false;
      alert.focus();
    }

    async function runTest() {
      form.clearErrors();
      alert.hidden = true;
      if (!form.clientCheck()) return;
      busy(true);
      replace(result, h('p', { class: 'muted' }, 'Testing…'));
      try {
        // Editing: the form overlays the saved connection (an empty secret reuses the stored
        // one) and the stored health is left alone. Adding: a draft test that stores nothing.
        const path = editing ? `${base}/${encodeURIComponent(item.id)}/test` : `${base}/test`;
        const outcome = await api('POST', path, form.body());
        replace(result, testOutcome(outcome));
        announce(outcome.success ? 'Connection test succeeded' : `Connection test failed: ${outcome.category}`);
      } catch (error) {
        replace(result);
        showProblem(error);
      } finally {
        busy(false);
      }
    }

    async function save(event) {
      event.preventDefault();
      form.clearErrors();
      alert.hidden = true;
      if (!form.clientCheck()) return;
      busy(true);
      try {
        const saved = editing
          ? await api('PUT', `${base}/${encodeURIComponent(item.id)}`, form.body())
          : await api('POST', base, form.body());
        awaiting.add(saved.id);
        testResults.delete(saved.id);
        dialog.close();
        announce(`${saved.name} saved`);
        await refresh();
      } catch (error) {
        showProblem(error);
      } finally {
        busy(false);
      }
    }

    showDialog(dialog, opener);
    form.controls.get('name')?.input.focus();
  }

  return { element, refresh, nextRefreshMs };
}

/** Opens a modal dialog; on close it is removed and focus goes back to its opener. */
function showDialog(dialog, opener) {
  const focusKey = opener?.dataset?.focusKey;
  dialog.addEventListener('close', () => {
    dialog.remove();
    const target = (focusKey && document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)) || opener;
    if (target?.isConnected) target.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
}

/** A test answer (`{success, category, message, latencyMs, ...}`) for display. */
function testOutcome(outcome) {
  if (!outcome) return null;
  if (outcome.pending) return h('div', { class: 'test-result', role: 'status' }, h('p', { class: 'muted' }, 'Testing…'));
  const latency = typeof outcome.latencyMs === 'number' ? ` (${outcome.latencyMs} ms)` : '';
  if (outcome.success) {
    return h('div', { class: 'test-result ok', role: 'status', dataset: { outcome: 'success' } },
      h('p', null, h('strong', null, 'Test succeeded'), latency, ': ', richText(outcome.message)));
  }
  return h('div', { class: 'test-result failed', role: 'status', dataset: { outcome: 'failure', category: outcome.category ?? '' } },
    h('p', null, h('strong', null, 'Test failed'), latency, ' ', categoryBadge(outcome.category), ' ', richText(outcome.message)));
}

function topologyText(topology) {
  const parts = [
    [topology.datacenters, 'datacenter'],
    [topology.clusters, 'cluster'],
    [topology.folders, 'folder'],
    [topology.resourcePools, 'resource pool'],
  ].filter(([n]) => typeof n === 'number')
    .map(([n, word]) => `${n} ${word}${n === 1 ? '' : 's'}`);
  return parts.length ? parts.join(', ') : null;
}

/** Updates relative times in place between re-renders. */
function refreshTimes(root) {
  for (const el of root.querySelectorAll('time[datetime]')) {
    const replacement = time(el.getAttribute('datetime'));
    if (replacement.textContent !== el.textContent) el.textContent = replacement.textContent;
  }
}

/** What the provider says about itself: readiness, minimum version, support matrix. */
function aboutProvider(descriptor) {
  const matrix = descriptor.supportMatrix ?? {};
  const words = (key) => key.replace(/([A-Z])/g, ' $1').toLowerCase();
  return h('details', { class: 'about' },
    h('summary', null, 'About this provider'),
    definitionList([
      ['Platform id', descriptor.platform],
      ['Readiness', descriptor.readiness],
      ['Minimum version', descriptor.minimumVersion],
      ['Resource types', (descriptor.projections ?? []).join(', ')],
    ]),
    h('table', { class: 'matrix' },
      h('caption', null, 'Support matrix'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Surface'), h('th', { scope: 'col' }, 'Support'))),
      h('tbody', null, Object.entries(matrix).map(([key, level]) =>
        h('tr', null, h('th', { scope: 'row' }, words(key)), h('td', null, String(level).replace(/-/g, ' ')))))));
}
