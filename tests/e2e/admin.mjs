// End-to-end test of Pylon's admin workspace in headless Chromium (Debian's package, driven by
// playwright-core). Started by host/tests/it/ui_browser.rs, which runs a real `pylon` and the
// govmomi vCenter simulator and passes their addresses in the environment. Exits non-zero on
// the first failed check, after saving a screenshot of the page as it was.
import { chromium } from 'playwright-core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required (run through the Rust test)`);
  return value;
}

const BASE = env('PYLON_URL');
const ADMIN = env('PYLON_ADMIN_TOKEN');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = env('ARTIFACT_DIR');
const SIM = {
  host: env('SIM_HOST'),
  port: env('SIM_PORT'),
  ca: env('SIM_CA_PEM'),
  username: env('SIM_USERNAME'),
  password: env('SIM_PASSWORD'),
  wrongPassword: env('SIM_WRONG_PASSWORD'),
};
const EXPECT = {
  agents: Number(env('EXPECT_AGENTS')),
  vms: Number(env('EXPECT_VMS')),
  storage: Number(env('EXPECT_STORAGE')),
};
const TOTAL = EXPECT.agents + EXPECT.vms + EXPECT.storage;

// Exactly these switches, plus a fresh profile and the pipe Playwright drives the browser over.
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** Long enough for the simulator poll and the page's refresh, short enough to fail fast. */
const WAIT_MS = 30_000;
const CONNECTION = 'Lab vCenter';

const began = Date.now();
const log = (line) => console.log(`[${((Date.now() - began) / 1000).toFixed(1)}s] ${line}`);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** The API directly, for set-up the UI does not offer (tokens) and for expectations. */
async function apiCall(method, path, body, token = ADMIN) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

let shots = 0;
async function shot(page, name, fullPage = true) {
  shots += 1;
  const file = join(ARTIFACTS, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage });
  log(`screenshot ${file}`);
}

async function step(name, body) {
  log(`> ${name}`);
  await body();
}

/** The document does not scroll sideways. */
async function fitsWidth(page, what) {
  // clientWidth excludes a vertical scrollbar, so this also catches content under it.
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: document.documentElement.clientWidth,
  }));
  check(scroll <= width, `${what}: page is ${scroll}px wide in a ${width}px window`);
}

const userDataDir = await mkdtemp(join(tmpdir(), 'pylon-e2e-profile-'));
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  // Playwright's own defaults add many switches; the flag set is fixed, so pass it whole.
  ignoreDefaultArgs: true,
  args: [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe'],
  timeout: WAIT_MS,
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
context.setDefaultTimeout(WAIT_MS);
const page = await context.newPage();

const problems = [];
page.on('pageerror', (error) => problems.push(`uncaught exception: ${error.message}`));
page.on('console', (message) => {
  const text = message.text();
  if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(text)) {
    problems.push(`CSP violation: ${text}`);
  }
});
const requests = [];
page.on('request', (request) => requests.push(`${request.method()} ${new URL(request.url()).pathname}`));

const card = () => page.locator('article.connection', { has: page.getByRole('heading', { name: CONNECTION, exact: true }) });
const dialog = () => page.getByRole('dialog');
const field = (label) => dialog().getByLabel(label, { exact: true });
const fieldError = (name) => dialog().locator(`[data-field="${name}"] .field-error`);

let exitCode = 0;
try {
  const platforms = await apiCall('GET', '/api/platforms');
  const vsphere = platforms.find((p) => p.slug === 'vmware');
  check(vsphere, 'the vSphere provider is registered');
  const label = (name) => vsphere.fields.find((f) => f.name === name).label;

  await step('sign in: a bad token is refused, the admin token works (keyboard only)', async () => {
    await page.goto(`${BASE}/`);
    const input = page.getByLabel('API token', { exact: true });
    await input.waitFor();
    await shot(page, 'sign-in');
    await input.fill('pylon_not-a-real-token');
    await input.press('Enter');
    await page.getByText('This token was not accepted').waitFor();
    check(await input.getAttribute('aria-invalid') === 'true', 'the token field is marked invalid');
    await input.fill('');
    await input.focus();
    await page.keyboard.type(ADMIN);
    await page.keyboard.press('Enter');
    // The workspace opens on the first provider tab, in display-name order (as `main.js` sorts).
    const first = platforms.map((p) => p.displayName).sort((a, b) => a.localeCompare(b))[0];
    await page.getByRole('heading', { level: 1, name: first }).waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('pylon.token')) === ADMIN, 'token kept in sessionStorage');
    check(!page.url().includes(ADMIN), 'the token is not in the URL');
    check(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');
  });

  await step('one tab per registered provider, from /api/platforms', async () => {
    const nav = page.getByRole('navigation', { name: 'Workspace' });
    for (const platform of platforms) {
      await nav.getByRole('link', { name: platform.displayName, exact: true }).waitFor();
    }
    await nav.getByRole('link', { name: 'Resources', exact: true }).waitFor();
    await nav.getByRole('link', { name: vsphere.displayName, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: vsphere.displayName }).waitFor();
    const current = nav.locator('[aria-current="page"]');
    check(await current.textContent() === vsphere.displayName, 'the provider tab is current');
    await page.getByText(`No ${vsphere.displayName} connections yet`).waitFor();
  });

  await step('create form: generated fields, client hints, server errors per field', async () => {
    await page.getByRole('button', { name: 'Add connection' }).click();
    await dialog().waitFor();
    for (const spec of vsphere.fields) {
      await field(spec.label).waitFor();
    }
    check(await field(label('password')).getAttribute('type') === 'password', 'the secret field is a password input');
    await field('Name').fill(CONNECTION);
    await field(label('host')).fill(SIM.host);
    await field(label('port')).fill(SIM.port);
    await field(label('username')).fill(SIM.username);
    await field(label('password')).fill(SIM.wrongPassword);
    await field(label('caCertificate')).fill(SIM.ca);

    // A client-side hint: the interval bounds stop the request before it is sent.
    await field('Poll interval (seconds)').fill('5');
    const before = requests.length;
    await dialog().getByRole('button', { name: 'Save' }).click();
    await fieldError('pollIntervalSeconds').waitFor();
    check(!requests.slice(before).some((r) => r.startsWith('POST')), 'no request for a form the browser can reject');
    await field('Poll interval (seconds)').fill('30');

    // A server-side error the browser cannot know: shown next to its field.
    await field(label('fingerprint')).fill('not-a-fingerprint');
    await dialog().getByRole('button', { name: 'Save' }).click();
    await fieldError('fingerprint').waitFor();
    const message = await fieldError('fingerprint').textContent();
    check(message.length > 0, 'the server message is shown');
    check(await field(label('fingerprint')).getAttribute('aria-invalid') === 'true', 'the field is marked invalid');
    check(await fieldError('host').isHidden(), 'other fields have no error');
    await shot(page, 'server-field-error');
    await field(label('fingerprint')).fill('');
  });

  await step('test the draft: a wrong password is an auth failure', async () => {
    await dialog().getByRole('button', { name: 'Test connection' }).click();
    const result = dialog().locator('.test-result[data-outcome="failure"]');
    await result.waitFor();
    check(await result.getAttribute('data-category') === 'auth', `category auth, got ${await result.textContent()}`);
    check(!(await dialog().textContent()).includes(SIM.wrongPassword), 'the password is not echoed');
    await shot(page, 'draft-test-auth-failure');
  });

  await step('save it anyway: the first poll fails with category auth', async () => {
    await dialog().getByRole('button', { name: 'Save' }).click();
    await dialog().waitFor({ state: 'detached' });
    await card().locator('.badge', { hasText: 'Failing' }).waitFor();
    await card().locator('.last-error .badge.category', { hasText: 'auth' }).waitFor();
    await card().getByText('every 30 s').waitFor();
    await shot(page, 'saved-failing-auth');
  });

  await step('edit: the stored password is never rendered; fix it, test, save', async () => {
    await page.getByRole('button', { name: `Edit ${CONNECTION}` }).click();
    await dialog().waitFor();
    const password = field(label('password'));
    check(await password.inputValue() === '', 'the password field starts empty');
    const values = await dialog().locator('input, textarea').evaluateAll((els) => els.map((el) => el.value));
    check(!values.includes('********'), 'the mask is not put into any input');
    check(!(await page.content()).includes(SIM.wrongPassword), 'the stored password is not in the page');
    check(await field('Name').inputValue() === CONNECTION, 'non-secret fields are filled in');

    // Testing the form with the password left empty reuses the stored (wrong) one.
    await dialog().getByRole('button', { name: 'Test connection' }).click();
    await dialog().locator('.test-result[data-category="auth"]').waitFor();

    await password.fill(SIM.password);
    await dialog().getByRole('button', { name: 'Test connection' }).click();
    await dialog().locator('.test-result[data-outcome="success"]').waitFor();
    await shot(page, 'edit-test-success');
    await dialog().getByRole('button', { name: 'Save changes' }).click();
    await dialog().waitFor({ state: 'detached' });
  });

  await step('the connection becomes healthy with the simulator counts', async () => {
    await card().locator('.badge', { hasText: 'Healthy' }).waitFor();
    for (const [key, expected] of Object.entries(EXPECT)) {
      await card().locator(`[data-count="${key}"]`, { hasText: new RegExp(`^${expected}$`) }).waitFor();
    }
    await card().getByText('vCenter').first().waitFor();
    check(await card().locator('.last-error').count() === 0, 'no last error once healthy');
    await shot(page, 'healthy-with-counts');
  });

  await step('re-test without re-entering the password; an edit keeps it', async () => {
    await page.getByRole('button', { name: `Re-test ${CONNECTION}` }).click();
    await card().locator('.test-result[data-outcome="success"]').waitFor();

    await page.getByRole('button', { name: `Edit ${CONNECTION}` }).click();
    await field('Poll interval (seconds)').fill('45');
    await dialog().getByRole('button', { name: 'Save changes' }).click();
    await dialog().waitFor({ state: 'detached' });
    await card().getByText('every 45 s').waitFor();
    await page.getByRole('button', { name: `Re-test ${CONNECTION}` }).click();
    await card().locator('.test-result[data-outcome="success"]').waitFor();
    await card().locator('.badge', { hasText: 'Healthy' }).waitFor();
    await shot(page, 'retest-success');
  });

  await step('resources: paging, filters, search', async () => {
    await page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: 'Resources' }).click();
    await page.getByRole('heading', { level: 1, name: 'Resources' }).waitFor();
    const rows = page.locator('table.resources tbody tr[data-resource-id]');
    const rowCount = async (expected, what) => {
      await page.waitForFunction(
        (n) => document.querySelectorAll('table.resources tbody tr[data-resource-id]').length === n && !document.querySelector('table.resources[aria-busy]'),
        expected,
      ).catch(async () => {
        throw new Error(`${what}: expected ${expected} rows, saw ${await rows.count()}`);
      });
    };
    await rowCount(Math.min(TOTAL, 25), 'first page of 25');

    await page.getByLabel('Per page').selectOption('10');
    await rowCount(10, 'first page of 10');
    const next = page.getByRole('button', { name: 'Next' });
    check(await next.isEnabled(), 'a second page exists');
    await next.click();
    await rowCount(TOTAL - 10, 'second page');
    await page.locator('.page-label', { hasText: 'Page 2' }).waitFor();
    check(await next.isDisabled(), 'no third page');
    await page.getByRole('button', { name: 'Previous' }).click();
    await rowCount(10, 'back on the first page');

    await page.getByLabel('Type').selectOption('vm');
    await rowCount(Math.min(EXPECT.vms, 10), 'VMs only');
    for (const type of await rows.locator('td:nth-child(2)').allTextContents()) {
      check(type === 'Virtual machine', `only VMs listed, saw ${type}`);
    }
    await page.getByLabel('Connection').selectOption({ label: CONNECTION });
    await rowCount(Math.min(EXPECT.vms, 10), 'VMs of the connection');

    const name = (await rows.first().locator('th button').textContent()).trim();
    await page.getByLabel('Search').fill(name);
    await page.getByLabel('Search').press('Enter');
    await page.waitForFunction(
      (n) => [...document.querySelectorAll('table.resources tbody tr[data-resource-id] th')].every((th) => th.textContent.includes(n))
        && document.querySelectorAll('table.resources tbody tr[data-resource-id]').length >= 1,
      name,
    );
    check(!page.url().includes(ADMIN), 'the token is not in the URL');
    await shot(page, 'resources-filtered');
  });

  await step('resource detail panel by keyboard: relations, topology, metrics, details', async () => {
    const button = page.locator('table.resources tbody tr[data-resource-id] th button').first();
    const name = (await button.textContent()).trim();
    await button.focus();
    await page.keyboard.press('Enter');
    const panel = page.getByRole('complementary', { name });
    await panel.waitFor();
    check(await button.getAttribute('aria-expanded') === 'true', 'the row says its detail is open');
    for (const heading of ['Relations', 'Topology', 'Details', 'Identity']) {
      await panel.getByRole('heading', { name: heading, exact: true }).waitFor();
    }
    await panel.getByText('Runs on').waitFor();
    await panel.getByText('Datacenter', { exact: true }).waitFor();
    await panel.getByText('power state', { exact: true }).waitFor();
    // History, alerts and metric series appear only when the server offers them for this
    // resource's provider: vSphere records events and tasks (the simulator's own start-up
    // and our session's events at least), and alerts (none: the simulator is all green).
    await panel.locator('[data-section="history"]').getByRole('heading', { name: 'History' }).waitFor();
    // Performance history: one row per canonical metric with its sparkline.
    await panel.locator('[data-section="metric history"] svg.sparkline').first().waitFor();
    await panel.locator('[data-section="metric history"]').getByRole('rowheader', { name: 'cpuPercent' }).waitFor();
    await panel.locator('[data-section="alerts"]').getByText('No alerts.').waitFor();
    await shot(page, 'resource-detail');

    // A relation opens its target.
    const runsOn = panel.locator('.relations li', { hasText: 'Runs on' }).getByRole('button');
    await page.waitForFunction(() => [...document.querySelectorAll('.relations button')].some((b) => b.textContent.includes('(Host)')));
    const hostLabel = (await runsOn.textContent()).replace(/ \(Host\)$/, '');
    await runsOn.click();
    await page.getByRole('complementary', { name: hostLabel }).waitFor();

    await page.keyboard.press('Escape');
    await page.locator('aside.detail').waitFor({ state: 'hidden' });
  });

  await step('a narrow window', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByLabel('Type').selectOption('');
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Search').press('Enter');
    await page.locator('table.resources tbody tr[data-resource-id] th button').first().click();
    await page.locator('aside.detail h2').waitFor();
    await fitsWidth(page, 'resources with detail at 390px');
    await shot(page, 'narrow-resources', false);
    await page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: vsphere.displayName }).click();
    await card().locator('.badge', { hasText: 'Healthy' }).waitFor();
    await fitsWidth(page, 'connections at 390px');
    await shot(page, 'narrow-connections', false);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('disable', async () => {
    await page.getByRole('button', { name: `Disable ${CONNECTION}` }).click();
    await card().locator('.badge', { hasText: 'Disabled' }).waitFor();
    await page.getByRole('button', { name: `Enable ${CONNECTION}` }).waitFor();
    await shot(page, 'disabled');
  });

  await step('delete with confirmation', async () => {
    await page.getByRole('button', { name: `Delete ${CONNECTION}` }).click();
    await dialog().getByRole('heading', { name: `Delete “${CONNECTION}”?` }).waitFor();
    check(await page.evaluate(() => document.activeElement?.textContent) === 'Cancel', 'Cancel has the focus');
    await shot(page, 'delete-confirmation');
    await page.keyboard.press('Escape');
    await dialog().waitFor({ state: 'detached' });
    check(await card().count() === 1, 'cancelling keeps the connection');

    await page.getByRole('button', { name: `Delete ${CONNECTION}` }).click();
    await dialog().getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText(`No ${vsphere.displayName} connections yet`).waitFor();
    const remaining = await apiCall('GET', '/api/vmware/connections');
    check(remaining.length === 0, 'the server deleted it');
    const resources = await apiCall('GET', '/api/resources');
    check(resources.items.length === 0, 'its resources are gone');
  });

  await step('a revoked token returns to sign-in with a clear message', async () => {
    const issued = await apiCall('POST', '/api/tokens', {
      name: 'ui-e2e', scopes: ['settings:read', 'settings:write', 'monitoring:read'],
    });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('Signed out').waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('pylon.token')) === null, 'sign-out forgets the token');
    await page.getByLabel('API token', { exact: true }).fill(issued.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: vsphere.displayName }).waitFor();

    await apiCall('DELETE', `/api/tokens/${issued.id}`);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByLabel('API token', { exact: true }).waitFor();
    await page.getByText('revoked or has expired').waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('pylon.token')) === null, 'the dead token is forgotten');
    await shot(page, 'revoked-token');
  });

  check(problems.length === 0, `page problems:\n${problems.join('\n')}`);
  log(`all checks passed (${shots} screenshots in ${ARTIFACTS})`);
} catch (error) {
  exitCode = 1;
  console.error(error.stack ?? String(error));
  if (problems.length) console.error(`page problems:\n${problems.join('\n')}`);
  try {
    await page.screenshot({ path: join(ARTIFACTS, 'failure.png'), fullPage: true });
    await writeFile(join(ARTIFACTS, 'failure.txt'), `${page.url()}\n\n${await page.locator('body').innerText()}`);
    console.error(`failure screenshot and page text in ${ARTIFACTS}`);
  } catch (shotError) {
    console.error(`could not save the failure screenshot: ${shotError.message}`);
  }
} finally {
  await browser.close();
  await rm(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
