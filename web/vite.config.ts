import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";
import preact from "@preact/preset-vite";

const serviceWorkerSource = fileURLToPath(new URL("./src/offline/service-worker.js", import.meta.url));
const publicDir = fileURLToPath(new URL("./public", import.meta.url));

/**
 * Writes /sw.js from src/offline/service-worker.js with this build's app shell filled in:
 * index.html, the entry chunk with every chunk and stylesheet it imports statically, and the
 * files of web/public. Lazily loaded chunks (calls, admin) are left out: they are cached when
 * first used. The version is a hash of the shell's names and of index.html, so every build
 * that changes the shell gets a new cache (hashed names change with their content).
 */
function serviceWorker(): Plugin {
  return {
    name: "roost-service-worker",
    apply: "build",
    enforce: "post",
    generateBundle(_options, bundle) {
      const shell = new Set<string>(["/index.html"]);
      const visit = (fileName: string) => {
        const chunk = bundle[fileName];
        if (!chunk || chunk.type !== "chunk" || shell.has(`/${fileName}`)) return;
        shell.add(`/${fileName}`);
        for (const css of chunk.viteMetadata?.importedCss ?? []) shell.add(`/${css}`);
        for (const imported of chunk.imports) visit(imported);
      };
      for (const item of Object.values(bundle)) {
        if (item.type === "chunk" && item.isEntry) visit(item.fileName);
      }
      for (const name of readdirSync(publicDir)) shell.add(`/${name}`);
      const index = bundle["index.html"];
      if (!index || index.type !== "asset") this.error("index.html is not in the bundle yet");
      const list = [...shell].sort();
      const version = createHash("sha256")
        .update(list.join("\n"))
        .update(index.source)
        .digest("hex")
        .slice(0, 16);
      const source = readFileSync(serviceWorkerSource, "utf8")
        .replace('"__ROOST_VERSION__"', JSON.stringify(version))
        .replace("__ROOST_PRECACHE__", JSON.stringify(list));
      this.emitFile({ type: "asset", fileName: "sw.js", source });
    },
  };
}

// The built files are embedded into the roost binary (build.rs). Everything but index.html and
// sw.js is content-hashed under /assets/, which Roost serves as immutable.
export default defineConfig({
  plugins: [preact(), serviceWorker()],
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
