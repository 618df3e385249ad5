import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

// Tauri sets TAURI_DEV_HOST when the dev server must be reachable from a device.
const host = process.env.TAURI_DEV_HOST;

export default defineConfig({
  // Keep Rust/Tauri output visible in the same terminal.
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
    host: host || false,
    hmr: host ? { protocol: "ws", host, port: 1421 } : undefined,
    watch: { ignored: ["**/src-tauri/**", "**/target/**"] },
  },
  // Only TAURI_* (and VITE_*) variables reach the UI bundle.
  envPrefix: ["VITE_", "TAURI_"],
  build: {
    // WebKitGTK (Linux) / WKWebView (macOS); safari15 is a safe floor.
    target: "safari15",
    outDir: "dist",
    emptyOutDir: true,
    minify: process.env.TAURI_ENV_DEBUG ? false : "esbuild",
    sourcemap: !!process.env.TAURI_ENV_DEBUG,
    // Two pages from the same code: the bedside monitor and the central station (issue 17).
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL("index.html", import.meta.url)),
        central: fileURLToPath(new URL("central.html", import.meta.url)),
      },
    },
  },
});
