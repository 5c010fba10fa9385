/**
 * `npm run test:production`: the production topology (real Temporal server on PostgreSQL, several workers
 * and API replicas as processes) under failure. Separate from `npm test`: it builds the Temporal server
 * from the Go module proxy on first use (~5 min) and runs for minutes. See test/production/.
 */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/production/**/*.production.ts'],
  testTimeout: 20 * 60_000,
  maxWorkers: 1,
  // .cache/ holds the Go module cache of the Temporal server build (scripts/production-stack): never crawl it.
  modulePathIgnorePatterns: ['<rootDir>/.cache/'],
  transform: { '^.+\\.ts$': 'ts-jest' },
};
