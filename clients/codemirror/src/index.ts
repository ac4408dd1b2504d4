// @tessera/codemirror: CodeMirror 6 inline (ghost text) completions from a Tabby-compatible server.
export {
  inlineCompletion,
  completionController,
  acceptGhost,
  acceptGhostWord,
  dismissGhost,
  nextWord,
  ghostField,
  setGhost,
  CompletionController,
  type InlineCompletionOptions,
  type CompletionInfo,
  type Ghost,
} from "./extension";
export { TabbyClient, buildSegments, HttpError, type CompletionRequest, type CompletionResponse, type LogEvent, type Segments } from "./client";
export { LruCache } from "./cache";
export { AdaptiveDebounce, type DebounceOptions } from "./debounce";
