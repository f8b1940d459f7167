import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The built files are embedded into the roost binary (build.rs). Everything but index.html is
// content-hashed under /assets/, which Roost serves as immutable.
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2020",
    // The calls chunk (livekit-client, ~140 KB gzip) is loaded only when someone joins a call;
    // the initial bundle is checked against its own budget (100 KB gzip) separately.
    chunkSizeWarningLimit: 600,
  },
});
