// The workspace shell: sign-in, one tab per registered provider (from GET /api/platforms)
// plus the resources view, hash routing, and the refresh loop of the visible view.
import { api, ApiError, forgetToken, onUnauthorized, signIn, token } from './api.js';
import { announce, h, replace, uid } from './dom.js';
import { providerView } from './connections.js';
import { resourcesView } from './resources.js';

const main = document.getElementById('main');
const tabs = document.getElementById('tabs');
const signOutButton = document.getElementById('sign-out');

let platforms = [];
let platformNotice = null;
let current = null;
/** Bumped by every schedule and sign-out, so only the newest refresh loop keeps running. */
let tick = 0;

onUnauthorized(() => {
  showSignIn('Your session ended: the server no longer accepts this API token (it was revoked or has expired). Sign in again with a valid token.');
});

signOutButton.addEventListener('click', () => {
  forgetToken();
  showSignIn('Signed out. The token was removed from this browser tab.', 'info');
});

window.addEventListener('hashchange', () => {
  if (token()) route();
});

document.addEventListener('visibilitychange', () => {
  // Catch up at once when the tab becomes visible again.
  if (!document.hidden && current) schedule(0);
});

function showSignIn(message, tone = 'error') {
  tick += 1;
  current = null;
  tabs.hidden = true;
  signOutButton.hidden = true;
  // Close any dialog left open by the view that was signed out of.
  for (const dialog of document.querySelectorAll('dialog')) dialog.remove();
  const inputId = uid('token');
  const helpId = `${inputId}-help`;
  const errorId = `${inputId}-error`;
  const input = h('input', {
    id: inputId, name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, 'aria-describedby': `${helpId} ${errorId}`,
  });
  const error = h('p', { class: 'field-error', id: errorId, role: 'alert', hidden: true });
  const button = h('button', { class: 'button primary', type: 'submit' }, 'Sign in');
  const headingId = uid('sign-in');
  const form = h('form', { class: 'sign-in card', method: 'post', novalidate: true, 'aria-labelledby': headingId, onsubmit: submit },
    h('h1', { id: headingId }, 'Sign in to Pylon'),
    message ? h('p', { class: `notice ${tone}`, role: tone === 'error' ? 'alert' : 'status', dataset: { signInMessage: '' } }, message) : null,
    h('div', { class: 'field' },
      h('label', { for: inputId }, 'API token'),
      input,
      h('p', { class: 'help', id: helpId },
        'Paste an API token, for example the admin token in ', h('code', null, 'data/admin-token'),
        '. It is kept only in this tab’s session storage and sent to this server alone.'),
      error),
    h('div', { class: 'actions' }, button));

  async function submit(event) {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) {
      showError('Enter an API token.');
      return;
    }
    button.disabled = true;
    const problem = await signIn(candidate);
    button.disabled = false;
    if (problem) {
      showError(problem.status === 401
        ? 'This token was not accepted: it is unknown or has been revoked.'
        : problem.message);
      return;
    }
    input.value = '';
    await start();
  }

  function showError(text) {
    error.textContent = text;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }

  input.addEventListener('input', () => {
    error.hidden = true;
    input.removeAttribute('aria-invalid');
  });
  replace(main, form);
  input.focus();
}

async function start() {
  replace(main, h('p', { class: 'loading' }, 'Loading…'));
  platformNotice = null;
  try {
    const answer = await api('GET', '/api/platforms');
    platforms = (Array.isArray(answer) ? answer : []).slice().sort((a, b) => a.displayName.localeCompare(b.displayName));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    platforms = [];
    platformNotice = error instanceof ApiError && error.status === 403
      ? 'This token lacks the settings:read scope, so connections are hidden; resources are shown if it has monitoring:read.'
      : `Could not load the registered providers: ${error.message}`;
  }
  buildTabs();
  signOutButton.hidden = false;
  tabs.hidden = false;
  route();
}

function buildTabs() {
  const links = platforms.map((p) => h('a', { class: 'tab', href: `#/p/${encodeURIComponent(p.slug)}`, dataset: { slug: p.slug } }, p.displayName));
  links.push(h('a', { class: 'tab', href: '#/resources', dataset: { slug: '' } }, 'Resources'));
  replace(tabs, links);
}

/** `#/p/{slug}` is a provider tab, `#/resources?…` the resources view. */
function parseHash() {
  const hash = window.location.hash.replace(/^#/, '');
  const [path, query = ''] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'p' && parts[1]) return { view: 'provider', slug: parts[1] };
  if (parts[0] === 'resources') return { view: 'resources', params: new URLSearchParams(query) };
  return { view: 'default' };
}

function route() {
  let target = parseHash();
  if (target.view === 'default' || (target.view === 'provider' && !platforms.some((p) => p.slug === target.slug))) {
    const first = platforms[0];
    const hash = first ? `#/p/${encodeURIComponent(first.slug)}` : '#/resources';
    window.history.replaceState(null, '', hash);
    target = parseHash();
  }
  for (const tab of tabs.querySelectorAll('a.tab')) {
    const active = target.view === 'provider' ? tab.dataset.slug === target.slug : target.view === 'resources' && tab.dataset.slug === '';
    if (active) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  if (target.view === 'provider') {
    const descriptor = platforms.find((p) => p.slug === target.slug);
    current = providerView(descriptor);
    document.title = `${descriptor.displayName} · Pylon`;
  } else {
    const view = resourcesView(platforms, target.params, (params) => {
      // A late write (a debounced search) from a view already left must not move the address.
      if (current !== view) return;
      const query = params.toString();
      window.history.replaceState(null, '', `#/resources${query ? `?${query}` : ''}`);
    });
    current = view;
    document.title = 'Resources · Pylon';
  }
  replace(main, platformNotice ? h('p', { class: 'notice info' }, platformNotice) : null, current.element);
  current.element.querySelector('h1')?.focus();
  announce(document.title);
  schedule(0);
}

/** Refreshes the visible view now, then again after the interval it asks for. */
function schedule(delay) {
  // One loop at a time: a newer schedule (view change, tab shown again) ends older ones.
  tick += 1;
  const mine = tick;
  const view = current;
  window.setTimeout(async () => {
    if (mine !== tick || view !== current) return;
    if (!document.hidden) await view.refresh();
    if (mine !== tick || view !== current) return;
    const next = view.nextRefreshMs();
    if (next) schedule(next);
  }, delay);
}

if (token()) {
  start();
} else {
  showSignIn(null);
}
