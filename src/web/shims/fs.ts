// `node:fs` in the page: memfs, an in-memory file system. The model files the page fetched (or the visitor picked)
// are written into it under /models/<name>/, so the library's loaders (configs, tokenizer, safetensors headers,
// external weights) read them exactly as they read a folder on disk in Node. The page never writes elsewhere.
// ref: DESIGN.md §2 (the Node/browser split lives in one place: src/web/build/, this folder)

export * from 'memfs';
export { fs as default } from 'memfs';
