// Tiny DOM helpers. Updates are written only when the value actually changes,
// so a frame in which nothing changed touches nothing.

type Child = Node | string | null | undefined | false;

export interface Props {
  class?: string;
  testid?: string;
  text?: string;
  attrs?: Record<string, string>;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.testid) el.setAttribute("data-testid", props.testid);
  if (props.attrs) for (const [k, v] of Object.entries(props.attrs)) el.setAttribute(k, v);
  if (props.text !== undefined) {
    el.textContent = props.text;
    textCache.set(el, props.text);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

const textCache = new WeakMap<Node, string>();

/** Set textContent only when it differs from what this module last wrote. */
export function setText(el: HTMLElement, text: string): void {
  if (textCache.get(el) === text) return;
  textCache.set(el, text);
  el.textContent = text;
}

/** Toggle a class only when needed. */
export function setClass(el: Element, cls: string, on: boolean): void {
  if (el.classList.contains(cls) !== on) el.classList.toggle(cls, on);
}

export function setHidden(el: HTMLElement, hidden: boolean): void {
  if (el.hidden !== hidden) el.hidden = hidden;
}

/** Set or remove an attribute only when it changes. */
export function setAttr(el: Element, name: string, value: string | null): void {
  const cur = el.getAttribute(name);
  if (cur === value) return;
  if (value === null) el.removeAttribute(name);
  else el.setAttribute(name, value);
}
