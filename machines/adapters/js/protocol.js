// The Node.js side of the process adapter protocol (harness/process.py, version 1).
//
// A program calls serve(makeReplica): it reads one JSON request per line from standard
// input, answers each with one JSON line on standard output, and exits when its input
// closes. makeReplica(replicaId) returns an object with the contract's operations (insert,
// delete, add, remove, write, ...) and value(), state(), merge(bytes), takeDeltas(),
// applyDelta(bytes); bytes are Uint8Array. Throw DecodeError for bytes that are not a
// valid state or delta (and change nothing), Refused for an operation the type refuses;
// anything else thrown is reported to the harness as an error of the implementation.
//
// Values: strings, numbers, null, arrays; bytes are {"bytes": hex} and integers beyond
// 2**53 - 1 are {"int": decimal} on the wire, Uint8Array and BigInt here.

import { createInterface } from "node:readline";

export const PROTOCOL = 1;

export class DecodeError extends Error {}

export class Refused extends Error {
  constructor(kind, detail = "") {
    super(detail ? `${kind}: ${detail}` : kind);
    this.kind = kind;
    this.detail = detail;
  }
}

export function fromWire(raw) {
  if (Array.isArray(raw)) return raw.map(fromWire);
  if (raw !== null && typeof raw === "object") {
    if (typeof raw.bytes === "string") return new Uint8Array(Buffer.from(raw.bytes, "hex"));
    if (typeof raw.int === "string") return BigInt(raw.int);
    throw new TypeError(`not a protocol value: ${JSON.stringify(raw).slice(0, 80)}`);
  }
  return raw;
}

export function toWire(value) {
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString("hex") };
  if (typeof value === "bigint") {
    return value >= -BigInt(Number.MAX_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : { int: value.toString() };
  }
  if (Array.isArray(value)) return value.map(toWire);
  return value === undefined ? null : value;
}

const fromBase64 = (text) => new Uint8Array(Buffer.from(text, "base64"));
const toBase64 = (bytes) => Buffer.from(bytes).toString("base64");

export function serve(makeReplica) {
  const replicas = new Map();
  const replica = (handle) => {
    const found = replicas.get(handle);
    if (found === undefined) throw new Error(`no replica ${handle}`);
    return found;
  };
  const answer = (request) => {
    const { cmd } = request;
    switch (cmd) {
      case "hello":
        if (request.protocol !== PROTOCOL) throw new Error(`protocol ${request.protocol} is not ${PROTOCOL}`);
        return { protocol: PROTOCOL };
      case "make":
        replicas.set(request.replica, makeReplica(request.replica_id, request.now));
        return null;
      case "op": {
        const target = replica(request.replica);
        if (typeof target[request.op] !== "function") throw new Error(`no operation ${request.op}`);
        return toWire(target[request.op](...request.args.map(fromWire), request.now));
      }
      case "value":
        return toWire(replica(request.replica).value());
      case "state":
        return toBase64(replica(request.replica).state());
      case "merge":
        replica(request.replica).merge(fromBase64(request.data), request.now);
        return null;
      case "take_deltas":
        return replica(request.replica).takeDeltas().map(toBase64);
      case "apply_delta":
        replica(request.replica).applyDelta(fromBase64(request.data), request.now);
        return null;
      case "drop":
        replicas.delete(request.replica);
        return null;
      default:
        throw new Error(`unknown request ${cmd}`);
    }
  };
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    const request = JSON.parse(line);
    let reply;
    try {
      reply = { id: request.id, ok: answer(request) };
    } catch (error) {
      if (error instanceof DecodeError) reply = { id: request.id, decode_error: error.message };
      else if (error instanceof Refused) reply = { id: request.id, refused: { kind: error.kind, detail: error.detail } };
      else reply = { id: request.id, error: `${error?.name ?? "Error"}: ${error?.message ?? String(error)}` };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
  });
  lines.on("close", () => process.exit(0));
}

// ----- what the Yjs and Automerge adapters share --------------------------------------

// Maps store elements and values as tagged strings, exactly as the pycrdt adapters do
// (machines/adapters/_pycrdt.py), so Yjs and Yrs replicas can share one document: "n:" for
// null, "s:" + text, "i:" + decimal, "b:" + lower-case hex.
export function toTagged(value) {
  if (value === null) return "n:";
  if (typeof value === "string") return "s:" + value;
  if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) return "i:" + value.toString();
  if (value instanceof Uint8Array) return "b:" + Buffer.from(value).toString("hex");
  throw new TypeError(`a map here stores null, strings, integers and bytes, not ${typeof value}`);
}

export function fromTagged(stored, what) {
  if (typeof stored === "string") {
    const colon = stored.indexOf(":");
    const tag = stored.slice(0, colon);
    const body = stored.slice(colon + 1);
    if (tag === "n" && body === "") return null;
    if (tag === "s") return body;
    if (tag === "i" && /^-?(0|[1-9][0-9]*)$/.test(body) && body !== "-0") return BigInt(body);
    if (tag === "b" && /^([0-9a-f]{2})*$/.test(body)) return new Uint8Array(Buffer.from(body, "hex"));
  }
  throw new DecodeError(`${what}: ${JSON.stringify(stored).slice(0, 60)} is not 'n:', 's:text', 'i:decimal' or 'b:hex'`);
}

// A sequence's items are one-character strings; JavaScript strings count UTF-16 code
// units, so indices are turned into code-unit offsets through the code points.
export function characters(text) {
  return Array.from(text);
}

export function checkItem(item) {
  if (typeof item !== "string" || characters(item).length !== 1) {
    throw new TypeError(`an item is a one-character string, got ${JSON.stringify(item)}`);
  }
}

export function checkIndex(index, length) {
  if (!Number.isInteger(index) || index < 0 || index > length) throw new RangeError(`index ${index} is outside 0..${length}`);
}
