/**
 * Throughput of the FortiOS emulator: `concurrency` loops of FortiOSClient.getGroup (GET
 * /api/v2/cmdb/firewall/addrgrp/ads-blocked) for `durationMs`, client and emulator in this one process,
 * latency injection off. Run standalone: `npm run build && node dist/bench/emulator-bench.js`.
 */
import { performance } from 'node:perf_hooks';
import { FortiOSClient } from '../src/fortios/client';
import { startEmulator } from '../src/fortios/emulator/server';

export interface EmulatorBenchResult {
  name: 'emulator';
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
}

export async function benchEmulator(
  opts: { durationMs?: number; concurrency?: number } = {},
): Promise<EmulatorBenchResult> {
  const durationMs = opts.durationMs ?? 3000;
  const concurrency = opts.concurrency ?? 16;
  const emulator = await startEmulator({ port: 0 });
  const client = new FortiOSClient({ baseUrl: emulator.url, token: emulator.token, connections: concurrency });
  const latencies: number[] = [];
  try {
    await client.getGroup('ipv4', 'ads-blocked'); // connect and warm up before timing
    const started = performance.now();
    const deadline = started + durationMs;
    const loop = async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await client.getGroup('ipv4', 'ads-blocked');
        latencies.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    const elapsedS = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      name: 'emulator',
      rps: Math.round(latencies.length / elapsedS),
      p50Ms: round2(percentile(latencies, 0.5)),
      p99Ms: round2(percentile(latencies, 0.99)),
      requests: latencies.length,
    };
  } finally {
    await client.close();
    await emulator.close();
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

if (require.main === module) {
  benchEmulator().then(
    (r) => {
      console.log('scenario   requests      rps   p50 ms   p99 ms');
      console.log(
        `${r.name.padEnd(8)} ${String(r.requests).padStart(10)} ${String(r.rps).padStart(8)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)}`,
      );
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
