// IEEE 11073-10101 codes the screen knows about, and UCUM -> display units.

export const MDC = {
  HR: 147842,
  PR_OXIMETER: 149530,
  PR_CUFF: 149546,
  SPO2: 150456,
  RR: 151562,
  TEMP: 150364,
  NIBP_SYS: 150021,
  NIBP_DIA: 150022,
  NIBP_MEAN: 150023,
} as const;

/** Short numeric labels. */
export function mdcLabel(mdc: number): string {
  switch (mdc) {
    case MDC.HR:
      return "HR";
    case MDC.PR_OXIMETER:
    case MDC.PR_CUFF:
      return "PR";
    case MDC.SPO2:
      return "SpO2";
    case MDC.RR:
      return "RR";
    case MDC.TEMP:
      return "Temp";
    case MDC.NIBP_SYS:
      return "NIBP sys";
    case MDC.NIBP_DIA:
      return "NIBP dia";
    case MDC.NIBP_MEAN:
      return "NIBP mean";
    default:
      return String(mdc);
  }
}

/** Unit shown when no reading has arrived yet (so the box is never unlabeled). */
export function defaultUnit(mdc: number): string {
  switch (mdc) {
    case MDC.HR:
    case MDC.PR_OXIMETER:
    case MDC.PR_CUFF:
    case MDC.RR:
      return "/min";
    case MDC.SPO2:
      return "%";
    case MDC.TEMP:
      return "°C";
    case MDC.NIBP_SYS:
    case MDC.NIBP_DIA:
    case MDC.NIBP_MEAN:
      return "mmHg";
    default:
      return "";
  }
}

/** UCUM code -> what a nurse reads. Unknown codes are shown as sent. */
export function displayUnit(ucum: string): string {
  switch (ucum) {
    case "Cel":
      return "°C";
    case "[degF]":
      return "°F";
    case "mm[Hg]":
      return "mmHg";
    case "/min":
      return "/min";
    case "%":
      return "%";
    case "kPa":
      return "kPa";
    default:
      return ucum;
  }
}

/** Decimal places shown for a code. */
export function decimalsFor(mdc: number): number {
  return mdc === MDC.TEMP ? 1 : 0;
}
