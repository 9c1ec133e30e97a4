/**
 * Bundle variant (the ledger-scale baseline): the release function built with today's ledger, before the sparse index.
 * dev/bench/ledger-bundles.ts swaps src/wiring.ts's import of the ledger for this module.
 */
export * from '../../../src/ledger/ledger';
export { BaselineLedger as DynamoLedger } from '../baseline-ledger';
