// The stations a central station in a plain browser watches: typed into a setup form,
// kept in sessionStorage only (gone when the tab closes: a token never lands on disk
// or in localStorage). The app (`vigil central`) takes them from site.json instead.

import type { FeedConfig } from "./station";
import { validToken } from "./wire";

export const SESSION_KEY = "vigil.central.feeds";

/** The same rule as the app's site.json check (vigil_core::central::check_url). */
export function checkFeedUrl(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "not a URL";
  }
  if (u.username || u.password) return "no user name or password in the URL (the token goes in its own field)";
  if (u.search || u.hash) return "no ?query or #fragment";
  if (u.protocol === "wss:") return null;
  if (u.protocol === "ws:") return u.hostname === "127.0.0.1" ? null : "plain ws:// only to 127.0.0.1; use wss://";
  return "use wss://";
}

/** Why this entry cannot be used, or null. */
export function checkEntry(e: FeedConfig, others: readonly FeedConfig[]): string | null {
  const name = e.name.trim();
  if (!name || name.length > 64) return "station name: 1 to 64 characters";
  if (others.some((o) => o.name.trim() === name)) return `station ${name} is there already`;
  const url = checkFeedUrl(e.url);
  if (url) return `URL: ${url}`;
  if (!e.token || !validToken(e.token)) return "token: letters, digits and . _ ~ - only";
  return null;
}

export function loadFeeds(store: Pick<Storage, "getItem">): FeedConfig[] {
  try {
    const v: unknown = JSON.parse(store.getItem(SESSION_KEY) ?? "[]");
    if (!Array.isArray(v)) return [];
    return v
      .filter((x): x is FeedConfig => typeof x?.name === "string" && typeof x?.url === "string" && typeof x?.token === "string")
      .map((x) => ({ name: x.name, url: x.url, token: x.token }));
  } catch {
    return [];
  }
}

export function saveFeeds(store: Pick<Storage, "setItem">, feeds: readonly FeedConfig[]): void {
  store.setItem(SESSION_KEY, JSON.stringify(feeds.map((f) => ({ name: f.name.trim(), url: f.url, token: f.token }))));
}
