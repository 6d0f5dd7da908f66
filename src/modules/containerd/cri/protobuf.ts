import { HostError } from '../../../util/errors.js';

/**
 * The protobuf wire format (proto3) as the CRI messages hoist uses need it: varint, fixed and
 * length-delimited fields, written and read without generated code.
 */

export const WireType = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;
export type WireTypeValue = (typeof WireType)[keyof typeof WireType];

export class ProtobufError extends HostError {
  constructor(message: string) {
    super(message);
    this.name = 'ProtobufError';
  }
}

export function encodeVarint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) throw new ProtobufError(`cannot encode negative varint ${v}`);
  if (v > 0xffff_ffff_ffff_ffffn) throw new ProtobufError(`varint ${v} exceeds 64 bits`);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

export function decodeVarint(buf: Uint8Array, offset: number): { value: bigint; next: number } {
  let result = 0n;
  let shift = 0n;
  for (let i = offset; i < buf.length && i < offset + 10; i++) {
    const b = buf[i];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return { value: result & 0xffff_ffff_ffff_ffffn, next: i + 1 };
    shift += 7n;
  }
  throw new ProtobufError(offset + 10 <= buf.length ? `varint at ${offset} longer than 10 bytes` : `truncated varint at ${offset}`);
}

/** Builds one message. Field order is the caller's; proto3 readers accept any order. */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private tag(field: number, wire: WireTypeValue): void {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) throw new ProtobufError(`invalid field number ${field}`);
    this.parts.push(encodeVarint((BigInt(field) << 3n) | BigInt(wire)));
  }

  uint64(field: number, value: number | bigint): this {
    this.tag(field, WireType.VARINT);
    this.parts.push(encodeVarint(value));
    return this;
  }

  bool(field: number, value: boolean): this {
    return this.uint64(field, value ? 1 : 0);
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.LEN);
    this.parts.push(encodeVarint(value.length), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, value: ProtoWriter | Uint8Array): this {
    return this.bytes(field, value instanceof ProtoWriter ? value.finish() : value);
  }

  /** map<string,string>: each entry is a nested message {key = 1, value = 2}. */
  stringMap(field: number, entries: Record<string, string>): this {
    for (const [k, v] of Object.entries(entries)) {
      this.message(field, new ProtoWriter().string(1, k).string(2, v));
    }
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface ProtoField {
  field: number;
  wire: WireTypeValue;
  /** bigint for VARINT; the raw bytes for LEN, I64 and I32. */
  value: bigint | Buffer;
}

export function decodeFields(buf: Uint8Array): ProtoField[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const fields: ProtoField[] = [];
  let pos = 0;
  while (pos < b.length) {
    const t = decodeVarint(b, pos);
    pos = t.next;
    const field = Number(t.value >> 3n);
    const wire = Number(t.value & 7n);
    if (field < 1) throw new ProtobufError(`invalid field number 0 at ${pos}`);
    switch (wire) {
      case WireType.VARINT: {
        const v = decodeVarint(b, pos);
        pos = v.next;
        fields.push({ field, wire, value: v.value });
        break;
      }
      case WireType.LEN: {
        const l = decodeVarint(b, pos);
        const len = Number(l.value);
        if (l.next + len > b.length) throw new ProtobufError(`field ${field}: length ${len} overruns message`);
        fields.push({ field, wire, value: b.subarray(l.next, l.next + len) });
        pos = l.next + len;
        break;
      }
      case WireType.I64:
      case WireType.I32: {
        const len = wire === WireType.I64 ? 8 : 4;
        if (pos + len > b.length) throw new ProtobufError(`field ${field}: truncated fixed${len * 8}`);
        fields.push({ field, wire, value: b.subarray(pos, pos + len) });
        pos += len;
        break;
      }
      default:
        throw new ProtobufError(`field ${field}: unsupported wire type ${wire}`);
    }
  }
  return fields;
}

/** Typed access to a decoded message; unknown fields are ignored, as proto3 requires. */
export class ProtoMessage {
  readonly fields: ProtoField[];

  constructor(buf: Uint8Array) {
    this.fields = decodeFields(buf);
  }

  private all(field: number, wire: WireTypeValue): ProtoField[] {
    return this.fields.filter((f) => {
      if (f.field !== field) return false;
      if (f.wire !== wire) throw new ProtobufError(`field ${field}: wire type ${f.wire}, expected ${wire}`);
      return true;
    });
  }

  private lastBytes(field: number): Buffer | null {
    const fs = this.all(field, WireType.LEN);
    return fs.length ? (fs[fs.length - 1].value as Buffer) : null;
  }

  /** proto3 scalar: the last occurrence wins, absent means the default. */
  string(field: number): string {
    return this.lastBytes(field)?.toString('utf8') ?? '';
  }

  strings(field: number): string[] {
    return this.all(field, WireType.LEN).map((f) => (f.value as Buffer).toString('utf8'));
  }

  uint64(field: number): bigint {
    const fs = this.all(field, WireType.VARINT);
    return fs.length ? (fs[fs.length - 1].value as bigint) : 0n;
  }

  bool(field: number): boolean {
    return this.uint64(field) !== 0n;
  }

  /** A singular nested message; several occurrences are merged, as protobuf specifies. */
  message(field: number): ProtoMessage | null {
    const fs = this.all(field, WireType.LEN);
    if (fs.length === 0) return null;
    return new ProtoMessage(Buffer.concat(fs.map((f) => f.value as Buffer)));
  }

  messages(field: number): ProtoMessage[] {
    return this.all(field, WireType.LEN).map((f) => new ProtoMessage(f.value as Buffer));
  }

  stringMap(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const entry of this.messages(field)) out[entry.string(1)] = entry.string(2);
    return out;
  }
}
