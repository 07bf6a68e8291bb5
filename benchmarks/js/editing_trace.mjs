// The Node.js half of benchmarks/editing_trace.py: one row for a JavaScript sequence library.
//
//   node --expose-gc editing_trace.mjs PACKAGES_DIR ROW TRACE_FILE
//
// PACKAGES_DIR holds the package.json whose node_modules has the libraries (the JS adapters'
// machines/adapters/js, installed from its lock file); ROW is one of ROWS below; TRACE_FILE is
// the trace in the binary form editing_trace.py writes (write_binary_trace): little-endian int32
// count, inserted length, end length, then positions, deleted counts and inserted lengths
// (int32 each), the inserted characters and the final text (UTF-8). Reading typed arrays leaves
// almost no garbage, so the row measures the library, not the trace's parsing.
//
// As the Python rows: replay every edit as a local edit (one transaction or change per edit,
// as the rga machine drives these libraries), encode the whole state, apply it to a fresh
// document, check both texts against the trace's final text. Prints one JSON line: CPU seconds
// of this process (process.cpuUsage, every thread: V8's collector included), resident growth
// after the edits (RSS, after a full collection), allocated growth (V8 heap in use plus memory
// held outside it: array buffers, WebAssembly memory), the peak resident growth over the row
// (maxRSS over the resident size once loaded).

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [packagesDir, row, traceFile] = process.argv.slice(2);
const require = createRequire(`${packagesDir}/package.json`);
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);

// A Yjs row: one shared type of a Y.Doc (``shared(doc)``), edited one transaction per edit.
async function yjsRow(shared, insert, read) {
  const Y = await load("yjs");
  const fresh = (clientID) => {
    const doc = new Y.Doc();
    doc.clientID = clientID;
    return doc;
  };
  return {
    replay(edits) {
      const doc = fresh(1);
      const target = shared(doc);
      edits((position, deleted, inserted) => {
        if (deleted) target.delete(position, deleted);
        if (inserted) insert(target, position, inserted);
      });
      return doc;
    },
    encode: (doc) => Y.encodeStateAsUpdate(doc),
    apply(state) {
      const doc = fresh(2);
      Y.applyUpdate(doc, state);
      return doc;
    },
    text: (doc) => read(shared(doc)),
  };
}

const ROWS = {
  "yjs-text": () => yjsRow((doc) => doc.getText("text"), (text, position, inserted) => text.insert(position, inserted),
    (text) => text.toString()),
  "yjs-array": () => yjsRow((doc) => doc.getArray("items"), (items, position, inserted) => items.insert(position, [...inserted]),
    (items) => items.toArray().join("")),
  "automerge-list": async () => {
    const A = await load("@automerge/automerge");
    return {
      replay(edits) {
        let doc = A.from({ items: [] }, { actor: "0001" });
        edits((position, deleted, inserted) => {
          doc = A.change(doc, (d) => {
            if (deleted) d.items.deleteAt(position, deleted);
            if (inserted) d.items.insertAt(position, ...inserted);
          });
        });
        return doc;
      },
      encode: (doc) => A.save(doc),
      apply: (state) => A.load(state, { actor: "0002" }),
      text: (doc) => doc.items.join(""),
    };
  },
  "automerge-text": async () => {
    const A = await load("@automerge/automerge");
    return {
      replay(edits) {
        let doc = A.from({ text: "" }, { actor: "0001" });
        edits((position, deleted, inserted) => {
          doc = A.change(doc, (d) => A.splice(d, ["text"], position, deleted, inserted));
        });
        return doc;
      },
      encode: (doc) => A.save(doc),
      apply: (state) => A.load(state, { actor: "0002" }),
      text: (doc) => doc.text.toString(),
    };
  },
};

function readTrace(path) {
  const bytes = readFileSync(path);
  const header = new Int32Array(bytes.buffer, bytes.byteOffset, 3);
  const [count, insertedBytes, endBytes] = header;
  const columns = new Int32Array(bytes.buffer.slice(bytes.byteOffset + 12, bytes.byteOffset + 12 + 12 * count));
  const decoder = new TextDecoder();
  const textStart = 12 + 12 * count;
  return {
    count,
    positions: columns.subarray(0, count),
    deleted: columns.subarray(count, 2 * count),
    lengths: columns.subarray(2 * count, 3 * count),
    inserted: decoder.decode(bytes.subarray(textStart, textStart + insertedBytes)),
    end: decoder.decode(bytes.subarray(textStart + insertedBytes, textStart + insertedBytes + endBytes)),
  };
}

const seconds = (cpu) => (cpu.user + cpu.system) / 1e6;
const held = (m) => m.heapUsed + m.external;

async function main() {
  if (!(row in ROWS)) throw new Error(`no row ${JSON.stringify(row)}: one of ${Object.keys(ROWS).join(", ")}`);
  if (typeof globalThis.gc !== "function") throw new Error("run node with --expose-gc");
  const impl = await ROWS[row]();
  const trace = readTrace(traceFile);
  const edits = (visit) => {
    let offset = 0;
    for (let i = 0; i < trace.count; i++) {
      const length = trace.lengths[i];
      visit(trace.positions[i], trace.deleted[i], length ? trace.inserted.slice(offset, offset + length) : "");
      offset += length;
    }
  };
  // Twice: the file's buffer (held outside the V8 heap) is let go by the first collection's
  // finalizers, and would otherwise be counted as memory the edits gave back.
  globalThis.gc();
  globalThis.gc();
  const before = process.memoryUsage();
  const wall = performance.now();
  const c0 = process.cpuUsage();
  const doc = impl.replay(edits);
  const c1 = process.cpuUsage();
  globalThis.gc();
  const after = process.memoryUsage();
  const c1b = process.cpuUsage();
  const state = impl.encode(doc);
  const c2 = process.cpuUsage();
  const received = impl.apply(new Uint8Array(state));
  const c3 = process.cpuUsage();
  const elapsed = (performance.now() - wall) / 1000;
  for (const [who, replica] of [["the editing replica", doc], ["the receiving replica", received]]) {
    const got = impl.text(replica);
    if (got !== trace.end) {
      let at = 0;
      while (at < got.length && got[at] === trace.end[at]) at++;
      console.log(JSON.stringify({ name: row, error: `WRONG TEXT at ${who}: ${got.length} characters, expected ${trace.end.length}; first difference at ${at}` }));
      return;
    }
  }
  const edit = seconds(c1) - seconds(c0);
  const encode = seconds(c2) - seconds(c1b);
  const apply = seconds(c3) - seconds(c2);
  console.log(JSON.stringify({
    name: row, mode: "node", edits: trace.count, edit_s: edit, encode_s: encode, apply_s: apply,
    total_s: edit + encode + apply, wall_s: elapsed, state_bytes: state.length,
    resident_bytes: after.rss - before.rss, allocated_bytes: held(after) - held(before), python_bytes: null,
    peak_bytes: Math.max(0, process.resourceUsage().maxRSS * 1024 - before.rss),
    memory_method: "maxRSS (Node)",
  }));
}

main().catch((error) => {
  console.log(JSON.stringify({ name: row, error: String(error && error.message ? error.message : error) }));
  process.exitCode = 1;
});
