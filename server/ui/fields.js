// The field catalog (query/src/fields.rs), as the server puts it in the
// page: every column's name, label, kind, and whether it sorts, filters
// and groups. The table and the filters read it instead of a copy.

const catalog = (() => {
  try { return JSON.parse(document.getElementById("ticks-fields").textContent).fields; }
  catch { return []; }
})();
const byName = new Map(catalog.map(f => [f.name, f]));

/// The catalog's field called `name`, or undefined.
export function field(name) { return byName.get(name); }

/// Every field.
export function fields() { return catalog; }
