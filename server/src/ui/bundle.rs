//! The page's modules linked into one script.
//!
//! Why a link step, and why by hand: served as fifteen modules, the page's
//! scripts cost its first render at 1M entries a third of its time, the
//! browser opening and queueing a request per module before any of them
//! runs (`node tests/browser/render-bench.mjs`: medians 263–379 ms as
//! modules, 207–243 ms as one script, same store and hour). A general
//! bundler would put a Node step (esbuild) or a very large dependency
//! (swc) into `cargo build`; the page's modules keep to a small subset of
//! module syntax instead, which this checks and refuses otherwise:
//!
//! - `import { a, b as c } from "./name.js";` on one line, naming a sibling;
//! - `export` before a top-level `function`, `async function`, `class` or
//!   `const` declaration (never `let` or `var`: an importer would keep the
//!   value it saw first, where a module sees every later assignment);
//! - no default export, no `export { … }` lists, no `import(…)` or
//!   `import.meta`, no import cycle.
//!
//! Each module becomes a function scope evaluated once, dependencies
//! first, in the order a browser evaluates the module graph (depth first,
//! in import order), returning its exports; an import becomes a
//! destructuring of them. Top-level names of different modules never meet.

use std::collections::BTreeSet;

/// Why the modules could not be linked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum BundleError {
    #[error("{module} imports {import:?}, which is not one of the page's modules")]
    UnknownModule { module: String, import: String },
    #[error("{module}, line {line}: {what} is not supported by the page's link step")]
    Unsupported {
        module: String,
        line: usize,
        what: &'static str,
    },
    #[error("the modules import each other in a circle: {0}")]
    Cycle(String),
}

/// One module, read.
struct Module<'a> {
    name: &'a str,
    /// `(module, "{ a, b: c }")` per import, in order.
    imports: Vec<(&'a str, String)>,
    exports: Vec<&'a str>,
    /// The source without its import lines and `export` keywords.
    body: String,
}

/// Links `modules` (name, source) into one script that evaluates `entry`
/// and everything it imports.
pub(crate) fn bundle(modules: &[(&str, &str)], entry: &str) -> Result<String, BundleError> {
    let read: Vec<Module> = modules
        .iter()
        .map(|(name, source)| read_module(name, source))
        .collect::<Result<_, _>>()?;
    // Visiting the graph finds an import of an unknown module too.
    let mut order = Vec::new();
    visit(&read, entry, &mut Vec::new(), &mut order)?;
    let mut out = String::from(
        "// The page's modules (server/ui/*.js), linked into one script by\n\
         // server/src/ui/bundle.rs: each module is the function scope below\n\
         // its name, evaluated once, dependencies first.\n",
    );
    for name in order {
        let Some(m) = read.iter().find(|m| m.name == name) else {
            continue;
        };
        out.push_str(&format!("\n// --- {} ---\n", m.name));
        if m.name == entry {
            out.push_str("(() => {\n");
        } else {
            out.push_str(&format!("const {} = (() => {{\n", binding(m.name)));
        }
        for (import, names) in &m.imports {
            out.push_str(&format!("const {names} = {};\n", binding(import)));
        }
        out.push_str(&m.body);
        if m.name != entry {
            out.push_str(&format!("return {{ {} }};\n", m.exports.join(", ")));
        }
        out.push_str("})();\n");
    }
    Ok(out)
}

/// The name a module's exports are bound to in the script.
fn binding(module: &str) -> String {
    let stem = module.strip_suffix(".js").unwrap_or(module);
    let stem: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("__ticks_{stem}")
}

/// Depth first in import order, each module after what it imports: the
/// order a browser evaluates a module graph in.
fn visit<'a>(
    modules: &'a [Module<'a>],
    name: &'a str,
    path: &mut Vec<&'a str>,
    order: &mut Vec<&'a str>,
) -> Result<(), BundleError> {
    if order.contains(&name) {
        return Ok(());
    }
    if path.contains(&name) {
        path.push(name);
        return Err(BundleError::Cycle(path.join(" -> ")));
    }
    let Some(m) = modules.iter().find(|m| m.name == name) else {
        return Err(BundleError::UnknownModule {
            module: path.last().unwrap_or(&"the page").to_string(),
            import: name.to_string(),
        });
    };
    path.push(name);
    for (import, _) in &m.imports {
        visit(modules, import, path, order)?;
    }
    path.pop();
    order.push(name);
    Ok(())
}

fn read_module<'a>(name: &'a str, source: &'a str) -> Result<Module<'a>, BundleError> {
    let unsupported = |line: usize, what: &'static str| BundleError::Unsupported {
        module: name.to_string(),
        line,
        what,
    };
    let mut module = Module {
        name,
        imports: Vec::new(),
        exports: Vec::new(),
        body: String::with_capacity(source.len()),
    };
    let mut exported = BTreeSet::new();
    for (i, line) in source.lines().enumerate() {
        let n = i + 1;
        if line.contains("import(") || line.contains("import.meta") {
            return Err(unsupported(n, "a dynamic import or import.meta"));
        }
        if let Some(rest) = line.strip_prefix("import ") {
            let (names, from) = rest
                .split_once(" from ")
                .ok_or_else(|| unsupported(n, "an import without `from` on its line"))?;
            let names = names.trim();
            if !(names.starts_with('{') && names.ends_with('}')) {
                return Err(unsupported(n, "an import of anything but named exports"));
            }
            let from = from
                .trim()
                .strip_suffix(';')
                .unwrap_or(from.trim())
                .trim_matches('"');
            let import = from
                .strip_prefix("./")
                .ok_or_else(|| unsupported(n, "an import from outside the page's folder"))?;
            module.imports.push((import, names.replace(" as ", ": ")));
            // The line stays a line, so the script's line numbers within a
            // module match the source's, give or take the wrapper.
            module.body.push('\n');
            continue;
        }
        if let Some(rest) = line.strip_prefix("export ") {
            let declared = ["async function ", "function ", "class ", "const "]
                .iter()
                .find_map(|kind| rest.strip_prefix(kind));
            let Some(declared) = declared else {
                return Err(unsupported(
                    n,
                    "an export other than of a function, class or const",
                ));
            };
            let export: &str = declared
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .next()
                .unwrap_or("");
            if export.is_empty() || declares_several(&declared[export.len()..]) {
                return Err(unsupported(n, "an export of several names at once"));
            }
            if exported.insert(export) {
                module.exports.push(export);
            }
            module.body.push_str(rest);
            module.body.push('\n');
            continue;
        }
        if line.starts_with("export{") {
            return Err(unsupported(n, "an export list"));
        }
        module.body.push_str(line);
        module.body.push('\n');
    }
    Ok(module)
}

/// Whether a declaration's line goes on to a second name (`a = 1, b = 2`):
/// a comma outside brackets and strings.
fn declares_several(rest: &str) -> bool {
    let mut depth = 0i32;
    let mut quote = None;
    let mut escaped = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return true,
            ';' if depth == 0 => return false,
            '/' if chars.peek() == Some(&'/') => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three modules: the script evaluates each once, what is imported
    /// before what imports it, and an import reads its module's exports.
    #[test]
    fn modules_become_one_script_in_evaluation_order() {
        let modules = [
            (
                "app.js",
                "import { a } from \"./a.js\";\nimport { b as bee } from \"./b.js\";\nconsole.log(a(), bee);\n",
            ),
            (
                "a.js",
                "import { b } from \"./b.js\";\nexport function a() { return b + 1; }\nconst hidden = 1;\n",
            ),
            ("b.js", "export const b = 41;\n"),
        ];
        let script = bundle(&modules, "app.js").expect("links");
        let at = |text: &str| script.find(text).unwrap_or(usize::MAX);
        assert!(at("// --- b.js ---") < at("// --- a.js ---"));
        assert!(at("// --- a.js ---") < at("// --- app.js ---"));
        assert_eq!(script.matches("// --- b.js ---").count(), 1);
        assert!(script.contains("const __ticks_b = (() => {\nconst b = 41;\nreturn { b };\n})();"));
        assert!(script.contains("const { b: bee } = __ticks_b;"));
        assert!(script.contains("const { a } = __ticks_a;"));
        assert!(script.contains("return { a };"), "`hidden` is not exported");
        assert!(!script.contains("export "));
        assert!(!script.contains("import "));
    }

    /// What the link step cannot carry over faithfully is refused by
    /// module, line and name, never linked wrongly.
    #[test]
    fn it_refuses_what_it_cannot_link_faithfully() {
        let refused = |source: &'static str| {
            bundle(&[("app.js", source)], "app.js")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(refused("let x = 1;\nexport let y = 2;\n").contains("app.js, line 2"));
        assert!(refused("export default function f() {}\n").contains("not supported"));
        assert!(refused("export const a = 1, b = 2;\n").contains("several names"));
        assert!(refused("export const { a, b } = x;\n").contains("several names"));
        assert_eq!(
            refused("export const a = f(1, \"x, y\"); // a, b\nexport const b = { c: 1, d: 2 };\n"),
            "",
            "commas inside calls, strings, objects and comments are one name's"
        );
        assert!(refused("const m = await import(\"./x.js\");\n").contains("dynamic import"));
        assert!(refused("import x from \"./x.js\";\n").contains("named exports"));
        assert!(refused("import { x } from \"/lib/x.js\";\n").contains("outside"));
        assert_eq!(
            bundle(&[("app.js", "import { x } from \"./x.js\";\n")], "app.js"),
            Err(BundleError::UnknownModule {
                module: "app.js".into(),
                import: "x.js".into()
            })
        );
        let circle = [
            ("app.js", "import { a } from \"./a.js\";\n"),
            (
                "a.js",
                "import { b } from \"./b.js\";\nexport const a = 1;\n",
            ),
            (
                "b.js",
                "import { a } from \"./a.js\";\nexport const b = 1;\n",
            ),
        ];
        assert_eq!(
            bundle(&circle, "app.js"),
            Err(BundleError::Cycle("app.js -> a.js -> b.js -> a.js".into()))
        );
    }
}
