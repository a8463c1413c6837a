// Connection forms generated from a provider's field schema (`fields` of its descriptor in
// GET /api/platforms), so a new provider gets a working form without UI code.
//
// The browser checks the hints it can (required, bounds, lengths) before a request, but the
// server is the authority: its `validation_error` answers are shown next to each named field.
// Secrets are never rendered back: the API only ever returns the mask `********`, the input
// stays empty, and an empty secret input on edit means "keep the stored value".
import { h, richText, uid } from './dom.js';

const MASK = '********';

/**
 * The common fields core owns for every provider (name, poll interval, enabled; see
 * core/src/draft.rs). Descriptors list only provider-specific fields, so these are declared
 * here once in the same shape.
 */
export const COMMON_FIELDS = [
  {
    name: 'name', label: 'Name', required: true, secret: false,
    help: 'A name for this connection, unique among this platform’s connections.',
    kind: { type: 'text', maxLength: 128 },
  },
  {
    name: 'pollIntervalSeconds', label: 'Poll interval (seconds)', required: false, secret: false,
    help: 'How often Pylon reads the platform, from 10 to 3600 seconds.',
    kind: { type: 'integer', min: 10, max: 3600 }, default: 60,
  },
  {
    name: 'enabled', label: 'Enabled', required: false, secret: false,
    help: 'A disabled connection is kept but not polled.',
    kind: { type: 'boolean' }, default: true,
  },
];

/**
 * Builds the inputs for `fields`. `item` is the saved connection when editing (its secrets
 * are masks and are never copied into an input). Answers the element and the operations the
 * dialog needs.
 */
export function schemaForm(fields, item) {
  const editing = Boolean(item);
  const controls = new Map();
  const container = h('div', { class: 'fields' });

  for (const spec of fields) {
    const control = fieldControl(spec, item, editing);
    controls.set(spec.name, control);
    container.append(control.wrapper);
  }

  return {
    element: container,
    controls,

    /** The JSON body for a create, update or test. */
    body() {
      const out = {};
      for (const [name, control] of controls) {
        const value = control.value();
        if (value !== undefined) out[name] = value;
      }
      return out;
    },

    /** Shows the browser's own checks per field; answers whether all passed. */
    clientCheck() {
      let first = null;
      for (const control of controls.values()) {
        const input = control.input;
        if (!input.checkValidity()) {
          control.showError(input.validationMessage || 'is not valid');
          first = first ?? input;
        }
      }
      first?.focus();
      return first === null;
    },

    /**
     * Shows server-side field errors next to their fields. Answers the messages for names
     * this form has no input for, so the caller can show them in the form's summary.
     */
    showErrors(fieldErrors) {
      const unplaced = [];
      let first = null;
      for (const [name, message] of Object.entries(fieldErrors ?? {})) {
        const control = controls.get(name);
        if (control) {
          control.showError(message);
          first = first ?? control.input;
        } else {
          unplaced.push(`${name}: ${message}`);
        }
      }
      first?.focus();
      return unplaced;
    },

    clearErrors() {
      for (const control of controls.values()) control.showError(null);
    },
  };
}

function fieldControl(spec, item, editing) {
  const id = uid(`field-${spec.name}`);
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const kind = spec.kind ?? { type: 'text' };
  const stored = item ? item[spec.name] : undefined;
  const hasStoredSecret = spec.secret && stored === MASK;
  const described = `${helpId} ${errorId}`;

  let input;
  let clearSecret = null;
  if (kind.type === 'boolean') {
    const initial = editing ? Boolean(stored) : Boolean(spec.default);
    input = h('input', { id, name: spec.name, type: 'checkbox', checked: initial, 'aria-describedby': described });
  } else if (kind.type === 'multilineText') {
    input = h('textarea', {
      id, name: spec.name, rows: 4, spellcheck: 'false',
      maxlength: kind.maxLength, 'aria-describedby': described,
    });
    if (!spec.secret && typeof stored === 'string') input.value = stored;
  } else if (kind.type === 'integer') {
    input = h('input', {
      id, name: spec.name, type: 'number', inputmode: 'numeric', step: 1,
      min: kind.min, max: kind.max, 'aria-describedby': described,
      placeholder: spec.default !== undefined ? String(spec.default) : null,
    });
    if (typeof stored === 'number') input.value = String(stored);
  } else {
    input = h('input', {
      id, name: spec.name, type: spec.secret ? 'password' : 'text',
      maxlength: kind.maxLength, 'aria-describedby': described,
      autocomplete: spec.secret ? 'new-password' : 'off', spellcheck: 'false',
    });
    if (!spec.secret && typeof stored === 'string') input.value = stored;
  }
  // On edit a stored secret may stay empty (kept); otherwise required means required.
  if (spec.required && kind.type !== 'boolean' && !hasStoredSecret) input.required = true;
  if (hasStoredSecret) input.placeholder = 'Stored; leave empty to keep it';

  // Said in words, before the help, rather than with a symbol in the label.
  const help = [input.required ? h('strong', { class: 'required' }, 'Required. ') : null, richText(spec.help)];
  if (kind.type === 'integer' && kind.min !== undefined && kind.max !== undefined) {
    help.push(` (${kind.min} to ${kind.max}${spec.default !== undefined ? `; default ${spec.default}` : ''})`);
  }
  if (hasStoredSecret) {
    help.push(' A value is stored and is never shown. Leave this empty to keep it; type a new value to replace it.');
  }
  const helpEl = h('p', { class: 'help', id: helpId }, help);
  const errorEl = h('p', { class: 'field-error', id: errorId, hidden: true });

  // An optional secret can be removed on purpose; an empty input alone always keeps it.
  if (hasStoredSecret && !spec.required) {
    clearSecret = h('input', { type: 'checkbox', id: `${id}-clear` });
  }

  const label = h('label', { for: id }, spec.label ?? spec.name);
  const wrapper = kind.type === 'boolean'
    ? h('div', { class: 'field check', dataset: { field: spec.name } }, h('div', { class: 'check-row' }, input, label), helpEl, errorEl)
    : h('div', { class: 'field', dataset: { field: spec.name } }, label, input, helpEl,
      clearSecret ? h('div', { class: 'check-row' }, clearSecret, h('label', { for: clearSecret.id }, `Remove the stored ${spec.label ?? spec.name}`)) : null,
      errorEl);

  // Typing fixes an error: drop the stale message.
  input.addEventListener('input', () => showError(null));

  function showError(message) {
    if (message) {
      errorEl.replaceChildren(...richText(message));
      errorEl.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      wrapper.classList.add('invalid');
    } else {
      errorEl.textContent = '';
      errorEl.hidden = true;
      input.removeAttribute('aria-invalid');
      wrapper.classList.remove('invalid');
    }
  }

  function value() {
    if (kind.type === 'boolean') return input.checked;
    if (spec.secret) {
      if (clearSecret?.checked) return '';
      // Empty: absent, which keeps a stored secret (and leaves a new one unset).
      return input.value === '' ? undefined : input.value;
    }
    if (kind.type === 'integer') {
      const text = input.value.trim();
      // Empty: `null`, which the server reads as "use the default" or "keep".
      return text === '' ? null : Number(text);
    }
    // Strings go as typed; the server trims, normalises and treats blank as unset.
    return input.value;
  }

  return { wrapper, input, value, showError };
}
