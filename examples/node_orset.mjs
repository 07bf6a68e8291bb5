// A user's OR-Set in JavaScript, checked by the orset machine through the process adapter
// protocol (harness/process.py). No dependencies: Node.js alone. Registered by one line in
// examples/my_node_orset.py; run by tests/test_process_guide.py.
//
// The set: an add makes a unique tag (replica, count); a remove moves the tags it sees of
// the element to the tombstones; an element is present while it has a tag not in them.
// State and deltas are the same JSON document {adds: [[element, tag], ...], removed: [tag,
// ...]}; merging is union of both.

import { createInterface } from "node:readline";

class ORSet {
  constructor(replicaId) {
    this.replicaId = replicaId;
    this.count = 0;
    this.adds = new Map(); // tag -> element (as the protocol's JSON)
    this.removed = new Set(); // tags
    this.pending = { adds: [], removed: [] }; // this replica's edits since takeDeltas
  }

  add(element) {
    this.count += 1;
    const tag = `${this.replicaId}.${this.count}`;
    this.adds.set(tag, element);
    this.pending.adds.push([element, tag]);
  }

  remove(element) {
    const key = JSON.stringify(element);
    for (const [tag, held] of this.adds) {
      if (JSON.stringify(held) === key && !this.removed.has(tag)) {
        this.removed.add(tag);
        this.pending.removed.push(tag);
      }
    }
  }

  value() {
    const present = new Map();
    for (const [tag, element] of this.adds) {
      if (!this.removed.has(tag)) present.set(JSON.stringify(element), element);
    }
    return [...present.values()];
  }

  state() {
    return { adds: [...this.adds].map(([tag, element]) => [element, tag]), removed: [...this.removed] };
  }

  join(document) {
    const valid = document && Array.isArray(document.adds) && Array.isArray(document.removed)
      && document.adds.every((pair) => Array.isArray(pair) && pair.length === 2 && typeof pair[1] === "string")
      && document.removed.every((tag) => typeof tag === "string");
    if (!valid) throw new BadBytes("not an OR-Set state or delta");
    for (const [element, tag] of document.adds) this.adds.set(tag, element);
    for (const tag of document.removed) this.removed.add(tag);
  }

  takeDeltas() {
    if (!this.pending.adds.length && !this.pending.removed.length) return [];
    const delta = this.pending;
    this.pending = { adds: [], removed: [] };
    return [delta];
  }
}

class BadBytes extends Error {}

function decode(base64) {
  try {
    return JSON.parse(Buffer.from(base64, "base64").toString("utf8"));
  } catch {
    throw new BadBytes("not JSON");
  }
}

const encode = (document) => Buffer.from(JSON.stringify(document)).toString("base64");
const replicas = new Map();

function answer(request) {
  const replica = replicas.get(request.replica);
  switch (request.cmd) {
    case "hello": return { protocol: 1 };
    case "make": replicas.set(request.replica, new ORSet(request.replica_id)); return null;
    case "op": replica[request.op](...request.args); return null;
    case "value": return replica.value();
    case "state": return encode(replica.state());
    case "take_deltas": return replica.takeDeltas().map(encode);
    case "merge": case "apply_delta": replica.join(decode(request.data)); return null;
    case "drop": replicas.delete(request.replica); return null;
    default: throw new Error(`unknown request ${request.cmd}`);
  }
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const request = JSON.parse(line);
  let reply;
  try {
    reply = { id: request.id, ok: answer(request) };
  } catch (error) {
    reply = error instanceof BadBytes ? { id: request.id, decode_error: error.message } : { id: request.id, error: String(error) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
});
