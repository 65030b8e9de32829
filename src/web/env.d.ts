// The demo client runs in a browser: give src/web/ the DOM's types. (The root tsconfig is
// Node-only; this reference adds the DOM library to the program that type-checks src/web/.)
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
export {};
