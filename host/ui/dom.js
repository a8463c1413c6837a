// Small DOM helpers. The UI never builds HTML from strings: every value that comes from the
// API becomes a text node or an attribute, so nothing in it can be parsed as markup or run.

/** Creates an element. `props` sets properties or attributes; `onX` functions become listeners. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

// Set as properties because their attribute only holds the initial state.
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'open', 'selected', 'textContent']);

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let counter = 0;
/** A document-unique id, for label/description links. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** Text where `code` spans are marked with backticks, as providers write their help. */
export function richText(text) {
  return String(text ?? '')
    .split('`')
    .map((part, i) => (i % 2 === 1 ? h('code', null, part) : part));
}

/** Says `message` to screen readers through the page's live region. */
export function announce(message) {
  const region = document.getElementById('announcer');
  if (!region) return;
  // Clearing first makes a repeated message be read again.
  region.textContent = '';
  window.setTimeout(() => { region.textContent = message; }, 50);
}

/** A description list from [term, value] pairs, skipping empty values. */
export function definitionList(pairs, className = 'facts') {
  const items = pairs.filter(([, value]) => value !== undefined && value !== null && value !== '');
  if (items.length === 0) return null;
  return h('dl', { class: className }, items.map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}
