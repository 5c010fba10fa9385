import { KeyedQueue } from '../../src/blocks/keyed-queue';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('KeyedQueue', () => {
  it('runs calls of one key one at a time, in order, and of different keys side by side', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    let running = 0;
    let most = 0;
    const call = (key: string, n: number) =>
      q.run(key, async () => {
        running++;
        most = Math.max(most, running);
        log.push(`${key}${n}+`);
        await tick();
        log.push(`${key}${n}-`);
        running--;
        return n;
      });
    const results = await Promise.all([call('a', 1), call('a', 2), call('b', 1), call('a', 3)]);
    expect(results).toEqual([1, 2, 1, 3]);
    const a = log.filter((l) => l.startsWith('a'));
    expect(a).toEqual(['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-']);
    expect(most).toBe(2); // a and b overlapped; no two a's did
  });

  it('a failing call rejects its own caller only, and the next call of the key still runs', async () => {
    const q = new KeyedQueue();
    const failed = q.run('k', async () => {
      throw new Error('boom');
    });
    const next = q.run('k', async () => 'ok');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
  });

  it('forgets a key once its last call has settled', async () => {
    const q = new KeyedQueue();
    const p = q.run('k', async () => tick());
    expect(q.size).toBe(1);
    await p;
    await tick();
    expect(q.size).toBe(0);
  });
});
