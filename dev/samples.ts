/** The lock IDs the samples under events/ name and the demo holds first (…0099 stays unknown on purpose). */
export const SAMPLE_LOCKS = ['0001@102', '0002@101', '0004@102', '0005@102', '0006@100', '0007@101'].map(
  (suffix) => `8f14e45f-ceea-467f-a8f2-1c8d1d3c${suffix}`,
);
