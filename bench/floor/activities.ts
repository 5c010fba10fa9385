/** The floor's one activity (bench-only): one firewall call per IP — put it on the banned list (one POST). */
import type { FortiOSClient } from '../../src/fortios/client';

export function createFloorActivities(fw: FortiOSClient) {
  return {
    async enforceOne(ip: string): Promise<void> {
      await fw.bannedAdd([ip], 3600);
    },
  };
}

export type FloorActivities = ReturnType<typeof createFloorActivities>;
