// Building the page without innerHTML: every text from the network goes in through textContent
// (h() children), so nothing a peer or the server sends is ever parsed as markup.

/**
 * h('button', { class: 'primary', onclick: f, 'aria-label': 'Send' }, 'Send')
 * Attributes starting with "on" become listeners; `class` may be a string or an array; null and
 * false attributes and children are skipped; strings become text nodes.
 */
export function h(tag, attributes = {}, ...children) {
  const element = tag.startsWith('svg:') ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      const names = Array.isArray(value) ? value.filter(Boolean) : String(value).split(/\s+/).filter(Boolean);
      element.classList.add(...names);
    } else if (name === 'value' || name === 'checked' || name === 'disabled' || name === 'hidden') {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replaceChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

export function formatTime(milliseconds) {
  const date = new Date(milliseconds);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return date.toDateString() === today.toDateString() ? time : `${date.toLocaleDateString()} ${time}`;
}

/** Keeps keyboard focus inside a dialog while it is open, and gives it back afterwards. */
export function trapFocus(dialog) {
  const previous = document.activeElement;
  const focusable = () => [...dialog.querySelectorAll('button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])')].filter((e) => !e.disabled && e.offsetParent !== null);
  dialog.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab') return;
    const items = focusable();
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      last.focus();
      event.preventDefault();
    } else if (!event.shiftKey && document.activeElement === last) {
      first.focus();
      event.preventDefault();
    }
  });
  queueMicrotask(() => (focusable()[0] ?? dialog).focus());
  return () => previous?.focus?.();
}
