/* global require, module, __filename */
// serverless.yml's `${file(./resources/observability.cjs):…}` variables: osls loads CommonJS only, so this file
// hands over to dev/observability.ts (TypeScript, through tsx) where the bound and the dashboard are computed.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- osls loads this file with require()
const { require: tsxRequire } = require('tsx/cjs/api');

module.exports = tsxRequire('../dev/observability.ts', __filename);
