// The one place that talks to Pylon's HTTP API. The API token lives in sessionStorage (gone
// when the tab closes, never in a URL or a cookie) and is sent as a bearer token.

const TOKEN_KEY = 'pylon.token';

/** An answer that was not a success, with the API's error envelope unpacked. */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    super(body?.error ?? fallback ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? (status === 0 ? 'network' : 'http_error');
    this.details = body?.details ?? {};
    /** Per-field messages of a `validation_error`, keyed by JSON field name. */
    this.fields = this.details.fields ?? {};
  }
}

let unauthorizedHandler = () => {};

/** Called (once per 401) when the stored token stops working: expired or revoked. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * Checks `candidate` against the API and keeps it when it works. Answers `null` on success or
 * the ApiError that refused it. A token without `settings:read` (403 here) is still a valid
 * token: the workspace then shows what that token may see.
 */
export async function signIn(candidate) {
  try {
    await send('GET', '/api/platforms', undefined, candidate);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) return error;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  return null;
}

/** Calls the API with the stored token; a 401 signs out and tells the handler. */
export async function api(method, path, body) {
  const current = token();
  if (!current) {
    unauthorizedHandler('signed-out');
    throw new ApiError(401, { error: 'not signed in', code: 'unauthorized' });
  }
  try {
    return await send(method, path, body, current);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && token() === current) {
      forgetToken();
      unauthorizedHandler('rejected');
    }
    throw error;
  }
}

async function send(method, path, body, bearer) {
  const headers = { Authorization: `Bearer ${bearer}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, null, `Pylon did not answer (${error.message}). Is the server running?`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, null, `unexpected answer from the server (HTTP ${response.status})`);
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/**
 * Like `api` for an optional endpoint: answers `null` when the server does not offer it
 * (404 or 405), so a section can stay hidden until the endpoint exists.
 */
export async function optional(method, path) {
  try {
    return await api(method, path);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 405)) return null;
    throw error;
  }
}
