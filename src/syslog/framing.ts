/**
 * Syslog over TCP carries a stream, not messages: RFC 6587 frames it either by octet counting
 * (`<length> <message>`) or by a trailing LF (non-transparent framing, what most daemons send by
 * default). A sender may use either, so each frame is recognised by its first byte: a digit starts a
 * length, anything else a line. A frame longer than the limit is skipped (counted, never buffered
 * whole), so memory per connection stays below twice the limit however hostile the stream.
 */
export interface Frames {
  frames: Buffer[];
  /** Frames longer than the limit, skipped. */
  oversized: number;
}

/** "65536 " at most: a length field longer than this cannot be a length we accept. */
const MAX_LENGTH_DIGITS = 10;

export class SyslogFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes of an oversized octet-counted frame still to skip, or 'line' to skip to the next LF. */
  private skip: number | 'line' = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): Frames {
    const out: Frames = { frames: [], oversized: 0 };
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.skip === 'line') {
        const lf = this.buf.indexOf(0x0a);
        if (lf < 0) {
          this.buf = Buffer.alloc(0);
          return out;
        }
        this.buf = this.buf.subarray(lf + 1);
        this.skip = 0;
      } else if (this.skip > 0) {
        const n = Math.min(this.skip, this.buf.length);
        this.buf = this.buf.subarray(n);
        this.skip -= n;
        if (this.skip > 0) return out;
      }
      // Blank lines and stray terminators between frames carry nothing.
      let start = 0;
      while (start < this.buf.length && (this.buf[start] === 0x0a || this.buf[start] === 0x0d || this.buf[start] === 0x00)) start++;
      this.buf = this.buf.subarray(start);
      if (this.buf.length === 0) return out;
      const next = isDigit(this.buf[0]) ? this.octetCounted(out) : this.lineFramed(out);
      if (!next) return out;
    }
  }

  /** `<length> <message>`; false when more bytes are needed. */
  private octetCounted(out: Frames): boolean {
    let i = 0;
    while (i < this.buf.length && i <= MAX_LENGTH_DIGITS && isDigit(this.buf[i])) i++;
    if (i === this.buf.length && i <= MAX_LENGTH_DIGITS) return false; // the length is still arriving
    if (this.buf[i] !== 0x20 || i > MAX_LENGTH_DIGITS) return this.lineFramed(out); // digits, but no length: a line
    const length = Number(this.buf.subarray(0, i).toString('latin1'));
    if (length > this.maxBytes) {
      out.oversized++;
      this.buf = this.buf.subarray(i + 1);
      this.skip = length;
      return true;
    }
    if (this.buf.length < i + 1 + length) return false;
    out.frames.push(this.buf.subarray(i + 1, i + 1 + length));
    this.buf = this.buf.subarray(i + 1 + length);
    return true;
  }

  /** Up to the next LF (a CR before it goes too); false when more bytes are needed. */
  private lineFramed(out: Frames): boolean {
    const lf = this.buf.indexOf(0x0a);
    if (lf < 0) {
      if (this.buf.length <= this.maxBytes) return false;
      out.oversized++;
      this.buf = Buffer.alloc(0);
      this.skip = 'line';
      return false;
    }
    if (lf > this.maxBytes + 1) out.oversized++;
    else out.frames.push(this.buf.subarray(0, lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf));
    this.buf = this.buf.subarray(lf + 1);
    return true;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.buf.length;
  }
}

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39;
}
