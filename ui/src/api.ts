// The only module that touches @tauri-apps/api.

import { Channel, invoke } from "@tauri-apps/api/core";
import type { AdmissionView, AdmitRequest, AppInfo, WardSnapshot, WardUpdate } from "./contract";

export function appInfo(): Promise<AppInfo> {
  return invoke<AppInfo>("app_info");
}

export function wardSnapshot(): Promise<WardSnapshot> {
  return invoke<WardSnapshot>("ward_snapshot");
}

/** Subscribe to live updates. Resolves once the core has accepted the channel. */
export async function wardSubscribe(onUpdate: (u: WardUpdate) => void): Promise<void> {
  const channel = new Channel<WardUpdate>();
  channel.onmessage = onUpdate;
  await invoke<void>("ward_subscribe", { channel });
}

export function admit(request: AdmitRequest): Promise<AdmissionView> {
  return invoke<AdmissionView>("admit", { request });
}

export function discharge(bed: string): Promise<void> {
  return invoke<void>("discharge", { bed });
}

/** False in a plain browser (vite dev without Tauri). */
export function inTauri(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

/** Unlocks the encrypted store with a passphrase typed at the workstation. */
export function unlock(passphrase: string): Promise<AppInfo> {
  return invoke<AppInfo>("unlock", { passphrase });
}
