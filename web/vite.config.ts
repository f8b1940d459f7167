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
  },
});
