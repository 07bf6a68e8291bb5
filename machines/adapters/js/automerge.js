// Automerge replicas behind the process adapter protocol: `node automerge.js KIND`, KIND one of
//   text          a collaborative string (rga machine)
//   list          a list of one-character strings (rga machine)
//   map-set       a map as a set: element present = its tagged key is present (orset machine)
//   map-register  one key of a map as a register (lww machine)
//
// Every replica starts from one base document (its root object made by actor 00, at time
// 0): two replicas that each made their own root object would hold two different objects
// under one key, and one would hide the other. Actor ids are replica id + 1 as two bytes,
// change times the replica's clock in seconds, so runs are reproducible. A delta is the
// change of one local edit (getLastLocalChange); state() is save(); merge loads the other
// state and merges it. Every incoming state or change is first joined into a clone and its
// content checked, so bad bytes change nothing.

import * as A from "@automerge/automerge";
import {
  DecodeError, characters, checkIndex, checkItem, fromTagged, serve, toTagged,
} from "./protocol.js";

const KINDS = {
  text: {
    root: "text",
    empty: "",
    insert(doc, index, item) {
      checkItem(item);
      const chars = characters(doc.text);
      checkIndex(index, chars.length);
      A.splice(doc, ["text"], chars.slice(0, index).join("").length, 0, item);
    },
    delete(doc, index) {
      const chars = characters(doc.text);
      checkIndex(index, chars.length - 1);
      A.splice(doc, ["text"], chars.slice(0, index).join("").length, chars[index].length);
    },
    value: (doc) => characters(doc.text),
    check(doc) {
      if (typeof doc.text !== "string") throw new DecodeError("automerge text: the root 'text' is not a string");
    },
  },
  list: {
    root: "list",
    empty: [],
    insert(doc, index, item) {
      checkItem(item);
      checkIndex(index, doc.list.length);
      doc.list.insertAt(index, item);
    },
    delete(doc, index) {
      checkIndex(index, doc.list.length - 1);
      doc.list.deleteAt(index);
    },
    value: (doc) => [...doc.list],
    check(doc) {
      if (!Array.isArray(doc.list)) throw new DecodeError("automerge list: the root 'list' is not a list");
      for (const item of doc.list) {
        if (typeof item !== "string" || characters(item).length !== 1) {
          throw new DecodeError(`automerge list: item ${JSON.stringify(item)} is not a one-character string`);
        }
      }
    },
  },
  "map-set": {
    root: "set",
    empty: {},
    // The value is a token unique to this add (actor and count): Automerge makes no
    // operation for an assignment of the value a key already holds, so `= true` on a present
    // element would not be a new add, and a concurrent remove would delete it
    // (tests/test_js_adapters.py pins this).
    add(doc, element, token) {
      doc.set[elementKey(element)] = token;
    },
    remove(doc, element) {
      delete doc.set[elementKey(element)];
    },
    has: (doc, element) => elementKey(element) in doc.set,
    value: (doc) => Object.keys(doc.set).map((key) => fromTagged(key, "automerge map-set key")),
    check(doc) {
      for (const [key, present] of Object.entries(doc.set)) {
        if (fromTagged(key, "automerge map-set key") === null) throw new DecodeError("automerge map-set: null is not an element");
        if (typeof present !== "string") {
          throw new DecodeError(`automerge map-set: key ${key} holds ${JSON.stringify(present)}, expected an add's token`);
        }
      }
    },
  },
  "map-register": {
    root: "register",
    empty: {},
    write(doc, value) {
      doc.register.value = toTagged(value);
    },
    value: (doc) => ("value" in doc.register ? fromTagged(doc.register.value, "automerge map-register value") : null),
    check(doc) {
      for (const [key, stored] of Object.entries(doc.register)) {
        if (key !== "value") throw new DecodeError(`automerge map-register: the map holds key ${key}, a register has only 'value'`);
        fromTagged(stored, "automerge map-register value");
      }
    },
  },
};

function elementKey(element) {
  if (element === null) throw new TypeError("null is not a set element");
  return toTagged(element);
}

const seconds = (now) => Math.floor(Number(now) / 1e9);

class AutomergeReplica {
  constructor(kind, base, replicaId) {
    this.kind = kind;
    this.actor = (replicaId + 1).toString(16).padStart(4, "0");
    this.doc = A.load(base, { actor: this.actor });
    this.deltas = [];
    this.adds = 0;
  }

  local(edit, now, ...args) {
    const before = A.getHeads(this.doc).join();
    this.doc = A.change(this.doc, { time: seconds(now) }, (doc) => edit(doc, ...args));
    if (A.getHeads(this.doc).join() !== before) this.deltas.push(A.getLastLocalChange(this.doc));
  }

  insert(index, item, now) { this.local(this.kind.insert, now, index, item); }
  delete(index, now) { this.local(this.kind.delete, now, index); }
  add(element, now) {
    this.adds += 1;
    this.local(this.kind.add, now, element, `${this.actor}.${this.adds}`);
  }
  remove(element, now) {
    if (this.kind.has(this.doc, element)) this.local(this.kind.remove, now, element);
  }
  write(value, now) { this.local(this.kind.write, now, value); }
  value() { return this.kind.value(this.doc); }
  state() { return A.save(this.doc); }

  takeDeltas() {
    const deltas = this.deltas;
    this.deltas = [];
    return deltas;
  }

  // Join into a clone, check its content, and only then keep it: bad bytes change nothing.
  joined(join, bytes, what) {
    let scratch;
    try {
      scratch = join(A.clone(this.doc, { actor: this.actor }));
    } catch (error) {
      throw new DecodeError(`automerge ${what}: ${error.message} (${bytes.length} bytes)`);
    }
    const roots = Object.keys(scratch).filter((name) => name !== this.kind.root);
    if (roots.length) throw new DecodeError(`automerge ${what}: writes root keys ${roots}, this document has only ${this.kind.root}`);
    try {
      this.kind.check(scratch);
    } catch (error) {
      if (error instanceof DecodeError) throw error;
      throw new DecodeError(`automerge ${what}: ${error.message}`);
    }
    this.doc = scratch;
  }

  merge(bytes) {
    this.joined((scratch) => A.merge(scratch, A.load(bytes)), bytes, "state");
  }

  applyDelta(bytes) {
    this.joined((scratch) => A.applyChanges(scratch, [bytes])[0], bytes, "change");
  }
}

const kind = KINDS[process.argv[2]];
if (kind === undefined) {
  process.stderr.write(`usage: node automerge.js ${Object.keys(KINDS).join("|")}\n`);
  process.exit(2);
}
const base = A.save(A.change(A.init({ actor: "0000" }), { time: 0 }, (doc) => { doc[kind.root] = kind.empty; }));
serve((replicaId) => new AutomergeReplica(kind, base, replicaId));
