/** Tests run serially against real servers (Temporal, the FortiOS emulator): see test/README.md. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  testTimeout: 120_000,
  maxWorkers: 1,
  // .cache/ holds the Go module cache of the Temporal server build (scripts/production-stack): never crawl it.
  modulePathIgnorePatterns: ['<rootDir>/.cache/'],
  transform: { '^.+\\.ts$': 'ts-jest' }, // type-checking is `npm run typecheck`; tsconfig's isolatedModules makes ts-jest transpile only
};
