// Builds the viewer into ../server/viewer-dist: index.html (a template in which the server
// replaces __HDFSTREAM_BASE__ with its base path), assets/viewer.js and assets/viewer.css.
// File names are fixed (no hashes) and everything is one chunk, so that the server can embed
// a fixed list of files.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

// Emits our own index.html template next to the bundle (Vite does not process it: its
// asset URLs carry the base-path placeholder, which only the server knows).
function indexTemplate() {
  return {
    name: 'hdfstream-index-template',
    generateBundle() {
      this.emitFile({
        type: 'asset',
        fileName: 'index.html',
        source: readFileSync(here('./index.html'), 'utf8'),
      });
    },
  };
}

export default defineConfig({
  root: here('.'),
  publicDir: false,
  esbuild: { jsx: 'automatic' },
  plugins: [indexTemplate()],
  build: {
    outDir: here('../server/viewer-dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
    assetsInlineLimit: 100_000,
    rollupOptions: {
      input: here('./src/main.jsx'),
      // Some dependencies mark their modules "use client" (for React server components),
      // which means nothing in a browser bundle.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
      output: {
        entryFileNames: 'assets/viewer.js',
        chunkFileNames: 'assets/viewer-[name].js',
        assetFileNames: (info) =>
          (info.names ?? []).some((n) => n.endsWith('.css'))
            ? 'assets/viewer.css'
            : 'assets/[name][extname]',
        inlineDynamicImports: true,
      },
    },
  },
});
