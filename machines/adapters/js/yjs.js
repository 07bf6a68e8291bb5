// Yjs replicas behind the process adapter protocol: `node yjs.js KIND`, KIND one of
//   text          Y.Text as a sequence (rga machine)
//   array         Y.Array of one-character strings as a sequence (rga machine)
//   map-set       Y.Map as a set: element present = its tagged key holds true (orset machine)
//   map-register  one key of a Y.Map as a register (lww machine)
//
// The document, root names, client ids (replica id + 1) and map encodings are those of the
// pycrdt (Yrs) adapters (machines/adapters/_pycrdt.py), so a Yjs replica and a Yrs replica
// exchange Yjs v1 updates in one run (machines/cross_language.py). A delta is the update of
// one local transaction; state() is the whole document as one update. Every incoming update
// is first applied to a scratch copy and its content checked, so bad bytes change nothing.

import * as Y from "yjs";
import {
  DecodeError, characters, checkIndex, checkItem, fromTagged, serve, toTagged,
} from "./protocol.js";

const LOCAL = "local";
// A client id no replica has (replicas have replica id + 1: small numbers).
const SCRATCH_CLIENT = 2 ** 30;

const KINDS = {
  text: {
    root: "text",
    get: (doc) => doc.getText("text"),
    insert(root, index, item) {
      checkItem(item);
      const chars = characters(root.toString());
      checkIndex(index, chars.length);
      root.insert(chars.slice(0, index).join("").length, item);
    },
    delete(root, index) {
      const chars = characters(root.toString());
      checkIndex(index, chars.length - 1);
      root.delete(chars.slice(0, index).join("").length, chars[index].length);
    },
    value: (root) => characters(root.toString()),
    check(root) {
      for (const part of root.toDelta()) {
        if (typeof part.insert !== "string" || part.attributes) throw new DecodeError("yjs text update: embeds or formatting");
      }
    },
  },
  array: {
    root: "array",
    get: (doc) => doc.getArray("array"),
    insert(root, index, item) {
      checkItem(item);
      checkIndex(index, root.length);
      root.insert(index, [item]);
    },
    delete(root, index) {
      checkIndex(index, root.length - 1);
      root.delete(index, 1);
    },
    value: (root) => root.toArray(),
    check(root) {
      for (const item of root.toArray()) {
        if (typeof item !== "string" || characters(item).length !== 1) {
          throw new DecodeError(`yjs array update: item ${JSON.stringify(item)} is not a one-character string`);
        }
      }
    },
  },
  "map-set": {
    root: "set",
    get: (doc) => doc.getMap("set"),
    add(root, element) {
      root.set(elementKey(element), true);
    },
    remove(root, element) {
      const key = elementKey(element);
      if (root.has(key)) root.delete(key);
    },
    value: (root) => Array.from(root.keys(), (key) => fromTagged(key, "yjs map-set key")),
    check(root) {
      for (const [key, present] of root.entries()) {
        if (fromTagged(key, "yjs map-set key") === null) throw new DecodeError("yjs map-set: null is not an element");
        if (present !== true) throw new DecodeError(`yjs map-set: key ${key} holds ${JSON.stringify(present)}, expected true`);
      }
    },
  },
  "map-register": {
    root: "register",
    get: (doc) => doc.getMap("register"),
    write(root, value) {
      root.set("value", toTagged(value));
    },
    value: (root) => (root.has("value") ? fromTagged(root.get("value"), "yjs map-register value") : null),
    check(root) {
      for (const [key, stored] of root.entries()) {
        if (key !== "value") throw new DecodeError(`yjs map-register: the map holds key ${key}, a register has only 'value'`);
        fromTagged(stored, "yjs map-register value");
      }
    },
  },
};

function elementKey(element) {
  if (element === null) throw new TypeError("null is not a set element");
  return toTagged(element);
}

class YjsReplica {
  constructor(kind, replicaId) {
    this.kind = kind;
    this.doc = new Y.Doc();
    this.doc.clientID = replicaId + 1;
    this.root = kind.get(this.doc);
    this.deltas = [];
    this.doc.on("update", (update, origin) => {
      if (origin === LOCAL) this.deltas.push(update);
    });
  }

  local(edit, ...args) {
    this.doc.transact(() => edit(this.root, ...args), LOCAL);
  }

  insert(index, item) { this.local(this.kind.insert, index, item); }
  delete(index) { this.local(this.kind.delete, index); }
  add(element) { this.local(this.kind.add, element); }
  remove(element) { this.local(this.kind.remove, element); }
  write(value) { this.local(this.kind.write, value); }
  value() { return this.kind.value(this.root); }
  state() { return Y.encodeStateAsUpdate(this.doc); }

  takeDeltas() {
    const deltas = this.deltas;
    this.deltas = [];
    return deltas;
  }

  // The update applied to a copy of this replica, its content checked; throws DecodeError.
  checked(update) {
    const scratch = new Y.Doc();
    // Not this replica's client id: Yjs gives a document that receives structs of its own
    // client id from elsewhere a new random id (and warns), which would make runs irreproducible.
    scratch.clientID = SCRATCH_CLIENT;
    Y.applyUpdate(scratch, this.state());
    try {
      Y.applyUpdate(scratch, update);
    } catch (error) {
      throw new DecodeError(`yjs update: ${error.message} (${update.length} bytes)`);
    }
    const roots = Array.from(scratch.share.keys()).filter((name) => name !== this.kind.root);
    if (roots.length) throw new DecodeError(`yjs update: writes root types ${roots}, this document has only ${this.kind.root}`);
    try {
      this.kind.check(this.kind.get(scratch));
    } catch (error) {
      if (error instanceof DecodeError) throw error;
      throw new DecodeError(`yjs update: ${error.message}`);
    }
  }

  merge(update) {
    this.checked(update);
    Y.applyUpdate(this.doc, update, "remote");
  }

  applyDelta(update) { this.merge(update); }
}

const kind = KINDS[process.argv[2]];
if (kind === undefined) {
  process.stderr.write(`usage: node yjs.js ${Object.keys(KINDS).join("|")}\n`);
  process.exit(2);
}
serve((replicaId) => new YjsReplica(kind, replicaId));
