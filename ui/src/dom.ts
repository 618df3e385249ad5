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

/**
 * Give `el` the custom property `name` (e.g. `--flash-period`) with `value`, or
 * none (null), through a class backed by one generated rule per distinct name
 * and value, never through the element's inline style.
 *
 * Why: WebKitGTK (2.50) grew the web process with every change to an element's
 * inline style and did not give it back. Issue 16, measured on the app at the
 * soak's 240x: the alarm flash period written into `style` as alarms started and
 * ended grew it ~0.7 MiB/s; without those writes (animations still running)
 * it stayed flat. Callers pass few distinct values, so the rules stay few.
 */
export function setCustomProperty(el: Element, name: string, value: string | null): void {
  const want = value === null ? null : customPropertyClass(name, value);
  const prefix = `cp${name}-`;
  // Backwards, so a removal does not skip the next class; no array per call (this runs every frame).
  for (let i = el.classList.length - 1; i >= 0; i--) {
    const c = el.classList[i];
    if (c.startsWith(prefix) && c !== want) el.classList.remove(c);
  }
  if (want !== null && !el.classList.contains(want)) el.classList.add(want);
}

const propertyClasses = new Map<string, string>();
let propertySheet: CSSStyleSheet | null = null;

/** The class that sets `name: value` (its rule is added on first use); for class strings built whole. */
export function customPropertyClass(name: string, value: string): string {
  const key = `${name}:${value}`;
  let cls = propertyClasses.get(key);
  if (cls === undefined) {
    // Written into a style sheet: our own names and numbers only.
    if (!/^--[a-z][a-z0-9-]*$/.test(name) || !/^[0-9a-z.%-]+$/i.test(value)) throw new Error(`not a plain custom property value: ${name}`);
    cls = `cp${name}-${propertyClasses.size}`;
    if (propertySheet === null) {
      // A constructed sheet: no <style> element for a content security policy to weigh.
      propertySheet = new CSSStyleSheet();
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, propertySheet];
    }
    propertySheet.insertRule(`.${cls} { ${name}: ${value}; }`, propertySheet.cssRules.length);
    propertyClasses.set(key, cls);
  }
  return cls;
}

/** " is-flashing <period class>" for a class string built whole, "" when steady (period from alarms.ts flashPeriodValue). */
export function flashingClasses(period: string | null): string {
  return period === null ? "" : ` is-flashing ${customPropertyClass("--flash-period", period)}`;
}

/** Set the whole class attribute only when it changes. */
export function setClassName(el: Element, cls: string): void {
  if (el.className !== cls) el.className = cls;
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
