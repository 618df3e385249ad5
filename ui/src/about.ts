// The About panel's build and update lines (issue 16): pure, tested in about.test.ts.

import type { AboutView, UpdateCheck } from "./contract";

/** Version, build, intended use, licence, SBOM and the update server, as table rows. */
export function buildRows(a: AboutView): [string, string][] {
  return [
    ["Build", `commit ${a.commit}, built ${a.build_date}`],
    ["Intended use", a.intended_use],
    ["Licence", a.licence],
    ["Software bill of materials", a.sbom],
    ["Updates", a.update.endpoint ? `from ${a.update.endpoint} (signed; the signature is checked before anything is installed)` : "off: no update server configured (site configuration updates.endpoint)"],
  ];
}

/** "Check for updates" answered. */
export function checkText(c: UpdateCheck): string {
  return c.available ? `Vigil ${c.available} is available (this is ${c.current}).` : `Vigil ${c.current} is up to date.`;
}

/**
 * What the install confirmation says while beds are monitored: how many, and that
 * monitoring and alarms stop there during the restart. Null: no bed monitored, no
 * confirmation needed.
 */
export function installConfirmText(beds: number, version: string): string | null {
  if (beds <= 0) return null;
  const n = beds === 1 ? "1 bed is" : `${beds} beds are`;
  const there = beds === 1 ? "at that bed" : "at those beds";
  return `${n} being monitored. Installing Vigil ${version} restarts it: monitoring and alarms stop ${there} until Vigil is back (usually under a minute). Make sure the patients are watched another way, then install.`;
}
