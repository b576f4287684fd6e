// Injected into the CommonJS bundle by scripts/bundle.mjs, which defines `import.meta.url` as
// this: CommonJS has no import.meta, and the sources use its url to require packages beside them.
export const __bsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;
