/**
 * Bundle variant ("fewer writes per outcome" taken to its floor): released outcomes are not
 * written at all, failures are. What the ledger's outcome write costs the handler is the difference to the
 * packaged function. Not a design: a HELD item would never leave the index.
 */
import type { LockResult } from '../../../src/core/model';
import { DynamoLedger as Ledger } from '../../../src/ledger/ledger';

export * from '../../../src/ledger/ledger';

export class DynamoLedger extends Ledger {
  override record(result: LockResult): Promise<void> {
    if (result.outcome === 'released' || result.outcome === 'alreadyReleased') return Promise.resolve();
    return super.record(result);
  }
}
