// Spans as an OTLP ExportTraceServiceRequest in protobuf: the bytes the SDK's own
// ProtobufTraceSerializer writes (test/otlp-proto.test.ts compares the two byte for byte), made
// in one pass instead of the SDK's two (it measures every span, then writes it), with strings and
// ids written by Buffer's native UTF-8 and hex writers, and attribute keys (a handful, repeated on
// every span) and each resource and scope encoded once and reused.
//
// Why: with every span sampled, exporting was half of what tracing costs an attempt
// (bench/attempt-trace-cost.ts: ≈25 µs of ≈45 µs per attempt, its two spans, with the SDK's
// serializer; docs/observability.md has the figures before and after).
//
// Wire format: opentelemetry-proto, collector/trace/v1 and trace/v1. Field numbers are noted
// where they are written.
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

type Resource = ReadableSpan['resource'];
type Scope = ReadableSpan['instrumentationScope'];

// Length prefixes are reserved before a message is written and its content moved when the
// length needs more (or fewer) bytes, so every length is the minimal varint, as the SDK writes.
class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** An unsigned varint below 2^32. */
  u32(v: number) {
    this.ensure(5);
    const b = this.buf;
    while (v > 0x7f) {
      b[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[this.pos++] = v;
  }

  /** An int64 varint (negative numbers in two's complement, ten bytes), as the SDK's writeVarint. */
  i64(value: number) {
    if (value >= 0 && value <= 0xffffffff) return this.u32(value);
    let low: number;
    let high: number;
    const abs = Math.abs(value);
    low = abs >>> 0;
    high = (abs / 0x100000000) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    this.ensure(10);
    while (high > 0 || low > 0x7f) {
      this.buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    this.buf[this.pos++] = low & 0x7f;
  }

  tag(field: number, wire: number) {
    this.u32((field << 3) | wire);
  }

  string(s: string) {
    const len = s.length;
    // Short ASCII strings (ids, names, URLs: nearly all) by hand: Buffer's writer costs more in
    // argument checks than the copy. The length is then the character count.
    if (len < 0x80) {
      this.ensure(len + 1);
      const b = this.buf;
      const at = this.pos + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[at + i] = c;
      }
      if (i === len) {
        b[this.pos] = len;
        this.pos = at + len;
        return;
      }
    }
    const n = Buffer.byteLength(s);
    this.u32(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  bytes(b: Uint8Array) {
    this.u32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A trace or span id (hex) as bytes. */
  hexId(hex: string) {
    const n = hex.length >> 1;
    this.u32(n);
    this.ensure(n);
    const b = this.buf;
    for (let i = 0; i < n; i++) b[this.pos++] = (nibble(hex.charCodeAt(2 * i)) << 4) | nibble(hex.charCodeAt(2 * i + 1));
  }

  fixed32(v: number) {
    this.ensure(4);
    this.pos = this.buf.writeUInt32LE(v >>> 0, this.pos);
  }

  /** Nanoseconds since the epoch as fixed64, from [seconds, nanoseconds] without BigInt (the SDK's arithmetic). */
  hrTime(t: HrTime) {
    const [seconds, nanos] = t;
    const lowPart = (seconds & 0xffff) * 1e9;
    const highPart = ((seconds / 0x10000) >>> 0) * 1e9;
    const low = (lowPart >>> 0) + (((highPart & 0xffff) * 0x10000) >>> 0) + nanos;
    const high = Math.floor(lowPart / 0x100000000) + ((highPart / 0x10000) >>> 0) + Math.floor(low / 0x100000000);
    this.ensure(8);
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(v: number) {
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }

  /** What was written, as a Buffer of its own. */
  copy(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  raw(b: Buffer) {
    this.ensure(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  /** Reserves `reserve` bytes for a length; returns where the message starts. */
  begin(reserve: number): number {
    this.ensure(reserve);
    this.pos += reserve;
    return this.pos;
  }

  /** Writes the length of the message begun at `start` into its reserved bytes, moving the message if the varint is longer or shorter. */
  end(start: number, reserve: number) {
    const len = this.pos - start;
    const size = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    let at = start - reserve;
    if (size !== reserve) {
      this.ensure(size - reserve);
      this.buf.copyWithin(at + size, start, this.pos);
      this.pos += size - reserve;
    }
    let v = len;
    while (v > 0x7f) {
      this.buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[at] = v;
  }
}

/** A hex digit's value, as the SDK's hexToBinary reads it (ids are lowercase hex). */
function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55;
}

/** The bytes `write` writes, on a writer of their own (for encodings made once and reused). */
function encodeAlone(size: number, write: (w: Writer) => void): Buffer {
  const w = new Writer(size);
  write(w);
  return w.copy();
}

// A KeyValue's key, encoded (field 1 and its length): keys repeat on every span. Bounded.
const keyBytes = new Map<string, Buffer>();

function keyOf(key: string): Buffer {
  let b = keyBytes.get(key);
  if (!b) {
    b = encodeAlone(key.length * 3 + 8, (w) => {
      w.tag(1, 2);
      w.string(key);
    });
    if (keyBytes.size >= 1000) keyBytes.clear();
    keyBytes.set(key, b);
  }
  return b;
}

const MIN_I64 = -(2 ** 63);
const MAX_I64 = 2 ** 63;

/** AnyValue (common/v1). */
function anyValue(w: Writer, value: unknown) {
  switch (typeof value) {
    case 'string':
      w.tag(1, 2);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, 0);
      w.u32(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= MIN_I64 && value < MAX_I64) {
        w.tag(3, 0);
        w.i64(value);
      } else {
        w.tag(4, 1);
        w.double(value);
      }
      return;
  }
  if (value instanceof Uint8Array) {
    w.tag(7, 2);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    w.tag(5, 2);
    const a = w.begin(1);
    for (const item of value) {
      w.tag(1, 2);
      const s = w.begin(1);
      anyValue(w, item);
      w.end(s, 1);
    }
    w.end(a, 1);
  } else if (typeof value === 'object' && value !== null) {
    w.tag(6, 2);
    const l = w.begin(1);
    attributes(w, value as Attributes, 1); // KeyValueList: its KeyValues in field 1
    w.end(l, 1);
  }
}

/** KeyValue: the key, then the value as an AnyValue (field 2). */
function keyValue(w: Writer, key: string, value: unknown) {
  w.raw(keyOf(key));
  w.tag(2, 2);
  const v = w.begin(1);
  anyValue(w, value);
  w.end(v, 1);
}

function attributes(w: Writer, attrs: Attributes | undefined, field: number) {
  for (const key in attrs) {
    if (!Object.hasOwn(attrs, key)) continue;
    w.tag(field, 2);
    const s = w.begin(1);
    keyValue(w, key, attrs[key] as AttributeValue | undefined);
    w.end(s, 1);
  }
}

// Span.flags: the W3C trace flags, with "has is_remote" set and "is_remote" for a remote parent.
const flagsOf = (traceFlags: number, isRemote: boolean | undefined) => (traceFlags & 0xff) | 0x100 | (isRemote ? 0x200 : 0);

/** Span (trace/v1), fields 1-16 in order. */
function span(w: Writer, s: ReadableSpan) {
  const ctx = s.spanContext();
  w.tag(1, 2);
  w.hexId(ctx.traceId);
  w.tag(2, 2);
  w.hexId(ctx.spanId);
  const traceState = ctx.traceState?.serialize();
  if (traceState) {
    w.tag(3, 2);
    w.string(traceState);
  }
  const parent = s.parentSpanContext;
  if (parent?.spanId) {
    w.tag(4, 2);
    w.hexId(parent.spanId);
  }
  w.tag(5, 2);
  w.string(s.name);
  // The API's kinds start at 0 for INTERNAL; OTLP's at 1 (0 is "unspecified").
  const kind = s.kind == null ? 0 : s.kind + 1;
  if (kind !== 0) {
    w.tag(6, 0);
    w.u32(kind);
  }
  w.tag(7, 1);
  w.hrTime(s.startTime);
  w.tag(8, 1);
  w.hrTime(s.endTime);
  attributes(w, s.attributes, 9);
  w.tag(10, 0);
  w.u32(s.droppedAttributesCount);
  for (const e of s.events) {
    w.tag(11, 2);
    const at = w.begin(1);
    w.tag(1, 1);
    w.hrTime(e.time);
    w.tag(2, 2);
    w.string(e.name);
    attributes(w, e.attributes, 3);
    w.tag(4, 0);
    w.u32(e.droppedAttributesCount || 0);
    w.end(at, 1);
  }
  w.tag(12, 0);
  w.u32(s.droppedEventsCount);
  for (const l of s.links) {
    w.tag(13, 2);
    const at = w.begin(1);
    w.tag(1, 2);
    w.hexId(l.context.traceId);
    w.tag(2, 2);
    w.hexId(l.context.spanId);
    const linkState = l.context.traceState?.serialize();
    if (linkState) {
      w.tag(3, 2);
      w.string(linkState);
    }
    attributes(w, l.attributes, 4);
    w.tag(5, 0);
    w.u32(l.droppedAttributesCount || 0);
    w.tag(6, 5);
    w.fixed32(flagsOf(l.context.traceFlags, l.context.isRemote));
    w.end(at, 1);
  }
  w.tag(14, 0);
  w.u32(s.droppedLinksCount);
  w.tag(15, 2);
  const st = w.begin(1);
  if (s.status.message) {
    w.tag(2, 2);
    w.string(s.status.message);
  }
  w.tag(3, 0);
  w.u32(s.status.code);
  w.end(st, 1);
  w.tag(16, 5);
  w.fixed32(flagsOf(ctx.traceFlags, parent?.isRemote));
}

// A resource (ResourceSpans field 1) and a scope (ScopeSpans field 1) are the same few objects
// in every export: each is encoded once.
const resourceBytes = new WeakMap<Resource, Buffer>();
const scopeBytes = new WeakMap<Scope, Buffer>();

function encodedResource(r: Resource): Buffer {
  let b = resourceBytes.get(r);
  if (!b) {
    b = encodeAlone(4096, (w) => {
      w.tag(1, 2);
      const at = w.begin(2);
      attributes(w, r.attributes, 1);
      w.tag(2, 0);
      w.u32(0);
      w.end(at, 2);
    });
    resourceBytes.set(r, b);
  }
  return b;
}

function encodedScope(s: Scope): Buffer {
  let b = scopeBytes.get(s);
  if (!b) {
    const scoped = s as Scope & { attributes?: Attributes; droppedAttributesCount?: number };
    b = encodeAlone(256, (w) => {
      w.tag(1, 2);
      const at = w.begin(1);
      w.tag(1, 2);
      w.string(s.name);
      if (s.version) {
        w.tag(2, 2);
        w.string(s.version);
      }
      attributes(w, scoped.attributes, 3);
      if (scoped.droppedAttributesCount) {
        w.tag(4, 0);
        w.u32(scoped.droppedAttributesCount);
      }
      w.end(at, 1);
    });
    scopeBytes.set(s, b);
  }
  return b;
}

// One writer for the process: exports run one at a time, and the request leaves as a copy.
const shared = new Writer(256 * 1024);

/** An ExportTraceServiceRequest holding `spans`, grouped by resource and then scope in first-seen order (as the SDK groups them). */
export function encodeTraceRequest(spans: ReadableSpan[]): Uint8Array {
  const byResource = new Map<Resource, Map<Scope, ReadableSpan[]>>();
  for (const s of spans) {
    let scopes = byResource.get(s.resource);
    if (!scopes) {
      scopes = new Map();
      byResource.set(s.resource, scopes);
    }
    const list = scopes.get(s.instrumentationScope);
    if (list) list.push(s);
    else scopes.set(s.instrumentationScope, [s]);
  }
  const w = shared;
  w.pos = 0;
  for (const [resource, scopes] of byResource) {
    w.tag(1, 2);
    const rs = w.begin(3);
    w.raw(encodedResource(resource));
    for (const [scope, list] of scopes) {
      w.tag(2, 2);
      const ss = w.begin(3);
      w.raw(encodedScope(scope));
      for (const s of list) {
        w.tag(2, 2);
        const at = w.begin(2);
        span(w, s);
        w.end(at, 2);
      }
      if (scope.schemaUrl) {
        w.tag(3, 2);
        w.string(scope.schemaUrl);
      }
      w.end(ss, 3);
    }
    if (resource.schemaUrl) {
      w.tag(3, 2);
      w.string(resource.schemaUrl);
    }
    w.end(rs, 3);
  }
  return w.copy();
}
