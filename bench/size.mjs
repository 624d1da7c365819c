// The release .wasm: raw and gzip size, its sections, what its largest parts are,
// and the change since the previous run.
//   node bench/size.mjs RELEASE_WASM NAMED_WASM HISTORY_JSON
// RELEASE_WASM is what ships (dist/wasm, after wasm-bindgen and wasm-opt -Oz, no
// names). NAMED_WASM is the same code as cargo built it, before wasm-bindgen and
// wasm-opt, which keeps a `name` section: its function bodies are grouped by
// crate (from the demangled names) and their shares applied to the shipped code
// section. twiggy is not in the package registry here, so this reads the `name`
// section itself. HISTORY_JSON keeps the last runs' figures; this run is added.
// Prints one JSON line: { measure: 'wasm_size', ... }.
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const [releasePath, namedPath, historyPath] = process.argv.slice(2);
const SECTIONS = { 0: 'custom', 1: 'type', 2: 'import', 3: 'function', 4: 'table', 5: 'memory', 6: 'global', 7: 'export', 8: 'start', 9: 'element', 10: 'code', 11: 'data', 12: 'data count' };

/** The sections of a module: [{ id, name, start, size }]. */
function sections(buf) {
  const out = [];
  let p = 8;
  const leb = () => { let r = 0; let s = 0; let b; do { b = buf[p++]; r += (b & 0x7f) * 2 ** s; s += 7; } while (b & 0x80); return r; };
  while (p < buf.length) {
    const id = buf[p++];
    const size = leb();
    const start = p;
    let name = SECTIONS[id] ?? `id ${id}`;
    if (id === 0) { const n = leb(); name = `custom "${buf.subarray(p, p + n).toString()}"`; }
    out.push({ id, name, start, size, total: size + (start - (out.length ? 0 : 0)) });
    p = start + size;
  }
  return out;
}

function reader(buf, p) {
  return {
    get p() { return p; },
    set p(v) { p = v; },
    u32() { let r = 0; let s = 0; let b; do { b = buf[p++]; r += (b & 0x7f) * 2 ** s; s += 7; } while (b & 0x80); return r; },
    name() { const n = this.u32(); const v = buf.subarray(p, p + n).toString(); p += n; return v; },
  };
}

/** Function index -> body size in bytes, and index -> name, from a module with a `name` section. */
function functions(buf) {
  const secs = sections(buf);
  let imported = 0;
  const imp = secs.find((s) => s.id === 2);
  if (imp) {
    const r = reader(buf, imp.start);
    for (let i = 0, n = r.u32(); i < n; i++) {
      r.name(); r.name();
      const kind = buf[r.p++];
      if (kind === 0) { r.u32(); imported++; } else if (kind === 1) { r.p++; const f = buf[r.p++]; r.u32(); if (f & 1) r.u32(); } else if (kind === 2) { const f = buf[r.p++]; r.u32(); if (f & 1) r.u32(); } else if (kind === 3) { r.p += 2; } else if (kind === 4) { r.p++; r.u32(); }
    }
  }
  const sizes = new Map();
  const code = secs.find((s) => s.id === 10);
  const r = reader(buf, code.start);
  for (let i = 0, n = r.u32(); i < n; i++) { const size = r.u32(); sizes.set(imported + i, size); r.p += size; }
  const names = new Map();
  const ns = secs.find((s) => s.name === 'custom "name"');
  if (ns) {
    const q = reader(buf, ns.start);
    q.name();
    while (q.p < ns.start + ns.size) {
      const kind = buf[q.p++];
      const len = q.u32();
      const end = q.p + len;
      if (kind === 1) for (let i = 0, n = q.u32(); i < n; i++) { const idx = q.u32(); names.set(idx, q.name()); }
      q.p = end;
    }
  }
  return { sizes, names, code: code.size };
}

/** A legacy-mangled Rust symbol (`_ZN…E`), demangled enough to read its path. */
function demangleLegacy(name) {
  const m = /^_ZN(.*)E$/.exec(name);
  if (!m) return null;
  const parts = [];
  let rest = m[1];
  while (rest.length) {
    const len = /^(\d+)/.exec(rest);
    if (!len) break;
    const n = Number(len[1]);
    parts.push(rest.slice(len[1].length, len[1].length + n));
    rest = rest.slice(len[1].length + n);
  }
  if (parts.length && /^h[0-9a-f]{16}$/.test(parts.at(-1))) parts.pop();
  const codes = { SP: '@', BP: '*', RF: '&', LT: '<', GT: '>', LP: '(', RP: ')', C: ',' };
  return parts.map((p) => p.replace(/^_\$/, '$').replace(/\$([A-Z]+)\$/g, (x, c) => codes[c] ?? x).replace(/\$u([0-9a-f]+)\$/g, (x, h) => String.fromCharCode(parseInt(h, 16))).replace(/\.\./g, '::')).join('::');
}

/** A v0-mangled Rust symbol (`_R…`) reduced to its identifiers, outermost first (enough to read, not exact). */
function demangleV0(name) {
  if (!name.startsWith('_R')) return null;
  const ids = [];
  const s = name.slice(2).replace(/s[0-9A-Za-z]*_(?=\d)/g, '');
  const re = /(\d+)_?/g;
  let m;
  while ((m = re.exec(s))) {
    const n = Number(m[1]);
    const id = s.slice(re.lastIndex, re.lastIndex + n);
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(id)) { ids.push(id); re.lastIndex += n; }
  }
  return ids.join('::');
}

/** A symbol in a form to show. */
const readable = (name) => demangleLegacy(name) ?? demangleV0(name) ?? name;

/** The crate a Rust symbol belongs to; an impl counts for the crate of its type. */
function crateOf(name) {
  if (/^(__wbindgen|__wbg_|__externref)/.test(name)) return 'wasm-bindgen glue';
  if (name.startsWith('_R')) {
    // v0 mangling: the first crate root, C[s<disambiguator>_]<len><name>.
    const m = /C(?:s[0-9A-Za-z]*_)?(\d+)([A-Za-z_][A-Za-z0-9_]*)/.exec(name.slice(2));
    if (m) return m[2].slice(0, Number(m[1]));
  }
  let s = demangleLegacy(name) ?? name;
  s = s.replace(/^[<&\s]+/, '').replace(/^(mut|dyn|const)\s+/, '').replace(/^[<&\s]+/, '').replace(/^\[/, '');
  const m = /^([A-Za-z_][A-Za-z0-9_]*)::/.exec(s);
  if (m) return m[1];
  if (/^(memcpy|memset|memmove|memcmp|__rust|__rdl|__rg|rust_|__multi3|__udivti3|__ashlti3|__lshrti3|__divti3|__umodti3|compiler_builtins)/.test(s)) return 'compiler builtins';
  return `other (${s.slice(0, 40)})`;
}

const release = readFileSync(releasePath);
const raw = release.length;
// gzip -9, as ./build.sh reports it (node's zlib at level 9 comes out about 1 % larger).
const gzip = (() => { try { return execSync(`gzip -9 -c '${releasePath}' | wc -c`, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() | 0; } catch { return 0; } })() || gzipSync(release, { level: 9 }).length;
const releaseSections = sections(release).map((s) => ({ name: s.name, bytes: s.size })).sort((a, b) => b.bytes - a.bytes);
const shippedCode = releaseSections.find((s) => s.name === 'code')?.bytes ?? 0;

let crates = [];
let top = [];
if (namedPath && existsSync(namedPath)) {
  const named = readFileSync(namedPath);
  const { sizes, names } = functions(named);
  const byCrate = new Map();
  const fns = [];
  let total = 0;
  for (const [idx, size] of sizes) {
    const name = names.get(idx) ?? `func[${idx}]`;
    // wasm-bindgen's descriptors run only at build time and are removed from what ships.
    if (name.includes('__wbindgen_describe')) continue;
    total += size;
    const c = crateOf(name);
    byCrate.set(c, (byCrate.get(c) ?? 0) + size);
    fns.push({ name, size });
  }
  crates = [...byCrate].map(([crate, bytes]) => ({ crate, share: +(bytes / total).toFixed(4), shipped_kib_estimate: +((shippedCode * bytes) / total / 1024).toFixed(1) }))
    .sort((a, b) => b.share - a.share).slice(0, 12);
  top = fns.sort((a, b) => b.size - a.size).slice(0, 10).map((f) => ({ name: readable(f.name).slice(0, 120), share: +(f.size / total).toFixed(4) }));
}

const commit = (() => { try { return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return 'unknown'; } })();
const history = historyPath && existsSync(historyPath) ? JSON.parse(readFileSync(historyPath, 'utf8')) : { runs: [] };
const previous = history.runs.at(-1) ?? null;
const run = { date: new Date().toISOString().slice(0, 10), commit, raw, gzip, code: shippedCode };
if (historyPath) {
  history.runs = [...history.runs, run].slice(-10);
  writeFileSync(historyPath, `${JSON.stringify(history, null, 1)}\n`);
}
console.log(JSON.stringify({ measure: 'wasm_size', ...run, sections: releaseSections.slice(0, 6), crates, top_functions: top, previous }));
