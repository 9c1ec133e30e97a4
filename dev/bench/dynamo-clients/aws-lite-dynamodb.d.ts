/** @aws-lite/dynamodb ships no types: a plugin object for @aws-lite/client's `plugins`. */
declare module '@aws-lite/dynamodb' {
  const plugin: object;
  export default plugin;
}
