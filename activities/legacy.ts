/**
 * The first release's activity names, for first-release workflows that run between an upgrade and their
 * migration (src/temporal/upgrade.ts): they do nothing. The firewall is written only by the enforcers now —
 * a first-release group entity writing its remembered list would drop what it did not create — and a
 * migrated block re-asserts its entry through its enforcer. Replays never run activities, so the names
 * only have to exist.
 */
export function createLegacyActivities() {
  return {
    async ensureAddress(_input: unknown): Promise<'created' | 'exists'> {
      return 'exists';
    },
    async deleteAddress(_input: unknown): Promise<'deleted' | 'absent'> {
      return 'absent';
    },
    async syncGroupMembers(_input: unknown): Promise<{ wrote: boolean; size: number; attempt: number }> {
      return { wrote: false, size: 0, attempt: 1 };
    },
    async readGroupMembers(_input: unknown): Promise<string[]> {
      return [];
    },
    async listRunningBlocks(_input: unknown): Promise<{ workflowId: string; ip: string; group?: string }[]> {
      return [];
    },
    async findStrayAddresses(_input: unknown): Promise<string[]> {
      return [];
    },
    async askGroup(_input: unknown): Promise<void> {
      // A first-release group would answer and write; it is retired. The block waits for its migration.
    },
    async answerBlocks(_replies: unknown): Promise<void> {},
  };
}
