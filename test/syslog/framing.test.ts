/** RFC 6587 framing: octet counting and LF framing, mixed, split anywhere, oversized frames skipped. */
import fc from 'fast-check';
import { SyslogFramer } from '../../src/syslog/framing';

const feed = (framer: SyslogFramer, ...chunks: (string | Buffer)[]) => {
  const frames: string[] = [];
  let oversized = 0;
  for (const c of chunks) {
    const r = framer.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
    frames.push(...r.frames.map((f) => f.toString()));
    oversized += r.oversized;
  }
  return { frames, oversized };
};

test('LF-framed and octet-counted frames, mixed on one connection; CRLF and blank lines', () => {
  const r = feed(new SyslogFramer(100), '<13>one\n', '9 <13>two\nx', 'yz\r\n\n\n', '5 three');
  expect(r).toEqual({ frames: ['<13>one', '<13>two\nx', 'yz', 'three'], oversized: 0 });
});

test('a frame split at every byte boundary comes out whole', () => {
  const text = '<13>first\n11 <13>second\n<13>third\n';
  for (let cut = 1; cut < text.length; cut++) {
    const framer = new SyslogFramer(100);
    expect(feed(framer, text.slice(0, cut), text.slice(cut)).frames).toEqual(['<13>first', '<13>second\n', '<13>third']);
    expect(framer.pending).toBe(0);
  }
});

test('oversized frames are skipped and counted, never buffered; the next frame is read', () => {
  const framer = new SyslogFramer(10);
  expect(feed(framer, '20 ', 'x'.repeat(15), 'y'.repeat(5), '2 ok')).toEqual({ frames: ['ok'], oversized: 1 });
  expect(feed(framer, 'z'.repeat(11))).toEqual({ frames: [], oversized: 1 });
  expect(framer.pending).toBe(0);
  expect(feed(framer, 'z'.repeat(1000), 'zz\n<1>fine\n')).toEqual({ frames: ['<1>fine'], oversized: 0 });
  expect(feed(framer, '99999999999999999999 abc\n')).toEqual({ frames: [], oversized: 1 }); // digits, no length: a line, too long
  expect(feed(framer, '123abc\n')).toEqual({ frames: ['123abc'], oversized: 0 }); // digits without a space: a line
});

test('whatever arrives, memory held stays bounded by the limit', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 30 }), (chunks) => {
      const framer = new SyslogFramer(64);
      for (const c of chunks) {
        for (const f of framer.push(Buffer.from(c)).frames) expect(f.length).toBeLessThanOrEqual(64);
        expect(framer.pending).toBeLessThanOrEqual(64 + 200 + 1);
      }
    }),
  );
});
