/**
 * Types for undici's Agent module, which src/koodrive/client.ts imports directly: the package root (typed by
 * undici) also loads fetch, WebSocket, the HTTP cache, mocks and interceptors, most of the Lambda bundle.
 */
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export default Agent;
}
