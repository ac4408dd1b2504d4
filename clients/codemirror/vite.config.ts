// Builds the playground (served by `tessera serve` at /playground) into dist/playground with fixed
// file names, so the server can embed them at build time. Everything is bundled: nothing is
// fetched at run time.
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: "playground",
  base: "/playground/",
  build: {
    outDir: "../dist/playground",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024, // one bundle of CodeMirror + four languages (~650 kB, 230 kB gzipped)
    modulePreload: { polyfill: false },
    rollupOptions: {
      output: {
        entryFileNames: "assets/playground.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/playground[extname]",
      },
    },
  },
  test: {
    root: ".",
    include: ["test/**/*.test.ts"],
    environment: "jsdom",
    setupFiles: ["test/setup.ts"],
  },
});
