//! Account and container listings as Swift serves them: `prefix`, `delimiter`,
//! `marker`, `end_marker`, `limit`, `reverse`, `path`; in plain text, JSON or XML.

use http::StatusCode;

use super::db::{Bound, DbError, Page};
use crate::error::Result;
use crate::http_util::xml_escape;
pub(super) use crate::swift::listing::{Format, Params};

pub(super) trait Named {
    fn name(&self) -> &str;
}

pub(super) enum Entry<T> {
    Item(T),
    Subdir(String),
}

/// Runs a listing over pages from `fetch`, rolling names up to `delimiter`.
pub(super) fn list<T: Named>(
    p: &Params,
    mut fetch: impl FnMut(&Page<'_>) -> std::result::Result<Vec<T>, DbError>,
) -> Result<Vec<Entry<T>>> {
    let mut out = Vec::new();
    // reversed, the marker is the upper end of the scan: the same exclusive bound
    let mut bound = p.marker.clone().map(|key| Bound {
        key,
        inclusive: false,
    });
    let end = p.end_marker.as_deref();
    while out.len() < p.limit {
        let want = p.limit - out.len();
        let page = Page {
            bound: bound.as_ref(),
            end,
            prefix: &p.prefix,
            reverse: p.reverse,
            limit: want.min(1000),
        };
        let rows = fetch(&page).map_err(super::db_error)?;
        if rows.is_empty() {
            break;
        }
        let mut next = None;
        for row in rows {
            if out.len() >= p.limit {
                break;
            }
            let name = row.name().to_owned();
            let rest = &name[p.prefix.len().min(name.len())..];
            if p.path && name == p.prefix {
                // `path=` lists what is inside the directory, not its marker
                next = Some(Bound {
                    key: name,
                    inclusive: false,
                });
                continue;
            }
            if let Some(d) = &p.delimiter
                && let Some(i) = rest.find(d.as_str())
                // with `path=`, a directory marker (`dir/`) is itself an entry
                && !(p.path && i + d.len() == rest.len())
            {
                let dir = format!("{}{}", p.prefix, &rest[..i + d.len()]);
                // a pseudo-directory that is the marker was on the page before: a
                // paginating client would get it again, and again
                if !p.path && p.marker.as_deref() != Some(dir.as_str()) {
                    out.push(Entry::Subdir(dir.clone()));
                }
                // skip everything under this pseudo-directory
                next = Some(if p.reverse {
                    Bound {
                        key: dir,
                        inclusive: false,
                    }
                } else {
                    // past every name under `dir`: its last character, plus one
                    let mut key = dir;
                    let last = key.pop().unwrap_or('\0');
                    key.push(char::from_u32(last as u32 + 1).unwrap_or(char::MAX));
                    Bound {
                        key,
                        inclusive: true,
                    }
                });
                break;
            }
            next = Some(Bound {
                key: name,
                inclusive: false,
            });
            out.push(Entry::Item(row));
        }
        match next {
            Some(b) => bound = Some(b),
            None => break,
        }
    }
    Ok(out)
}

/// A listing body: names a line each (plain), a JSON array, or an XML document whose
/// root is `root.0` named `root.1`; pseudo-directories as `subdir` entries.
pub(super) fn render<T>(
    fmt: Format,
    root: (&str, &str),
    entries: &[Entry<T>],
    json_item: impl Fn(&T) -> serde_json::Value,
    xml_item: impl Fn(&T) -> String,
) -> String
where
    T: Named,
{
    match fmt {
        Format::Plain => entries
            .iter()
            .map(|e| match e {
                Entry::Item(i) => format!("{}\n", i.name()),
                Entry::Subdir(d) => format!("{d}\n"),
            })
            .collect(),
        Format::Json => serde_json::Value::Array(
            entries
                .iter()
                .map(|e| match e {
                    Entry::Item(i) => json_item(i),
                    Entry::Subdir(d) => serde_json::json!({ "subdir": d }),
                })
                .collect(),
        )
        .to_string(),
        Format::Xml => {
            let (tag, name) = root;
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{tag} name=\"{}\">",
                xml_escape(name)
            );
            for e in entries {
                match e {
                    Entry::Item(i) => s.push_str(&xml_item(i)),
                    Entry::Subdir(d) => s.push_str(&format!(
                        "<subdir name=\"{0}\"><name>{0}</name></subdir>",
                        xml_escape(d)
                    )),
                }
            }
            s.push_str(&format!("</{tag}>"));
            s
        }
    }
}

/// A listing answer: 204 for an empty plain listing, 200 otherwise.
pub(super) fn status(format: Format, empty: bool) -> StatusCode {
    if empty && format == Format::Plain {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swift::listing::params;
    use crate::swift::query::query_pairs;

    struct N(String);
    impl Named for N {
        fn name(&self) -> &str {
            &self.0
        }
    }

    /// An in-memory stand-in for the database's ordered pages.
    fn run(names: &[&str], p: &Params) -> Vec<String> {
        let mut sorted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        sorted.sort();
        let out = list(p, |page| {
            let mut rows: Vec<String> = sorted
                .iter()
                .filter(|n| n.starts_with(page.prefix))
                .filter(|n| match page.bound {
                    None => true,
                    Some(b) if page.reverse => {
                        n.as_str() < b.key.as_str() || (b.inclusive && **n == b.key)
                    }
                    Some(b) => n.as_str() > b.key.as_str() || (b.inclusive && **n == b.key),
                })
                .filter(|n| match page.end {
                    None => true,
                    Some(e) if page.reverse => n.as_str() > e,
                    Some(e) => n.as_str() < e,
                })
                .cloned()
                .collect();
            if page.reverse {
                rows.reverse();
            }
            rows.truncate(page.limit);
            Ok(rows.into_iter().map(N).collect())
        })
        .unwrap();
        out.into_iter()
            .map(|e| match e {
                Entry::Item(n) => n.0,
                Entry::Subdir(d) => format!("[{d}]"),
            })
            .collect()
    }

    fn p(q: &str) -> Params {
        params(&query_pairs(Some(q)).unwrap()).unwrap()
    }

    const NAMES: &[&str] = &["a", "a/1", "a/2", "a/b/3", "a0", "b", "b/1", "c"];

    #[test]
    fn delimiter_rolls_up_and_skips() {
        assert_eq!(
            run(NAMES, &p("delimiter=/")),
            ["a", "[a/]", "a0", "b", "[b/]", "c"]
        );
        assert_eq!(
            run(NAMES, &p("delimiter=/&prefix=a/")),
            ["a/1", "a/2", "[a/b/]"]
        );
        assert_eq!(run(NAMES, &p("delimiter=/&limit=2")), ["a", "[a/]"]);
        assert_eq!(
            run(NAMES, &p("delimiter=/&reverse=true")),
            ["c", "[b/]", "b", "a0", "[a/]", "a"]
        );
    }

    #[test]
    fn markers_limits_reverse() {
        assert_eq!(run(NAMES, &p("marker=a0&limit=2")), ["b", "b/1"]);
        assert_eq!(run(NAMES, &p("end_marker=a/2")), ["a", "a/1"]);
        assert_eq!(
            run(NAMES, &p("reverse=on&marker=b&end_marker=a/1")),
            ["a0", "a/b/3", "a/2"]
        );
        assert_eq!(run(NAMES, &p("prefix=b")), ["b", "b/1"]);
        assert_eq!(run(NAMES, &p("path=a")), ["a/1", "a/2"]);
        let marked = ["d/", "d/x", "d/y/", "d/y/z", "e"];
        assert_eq!(run(&marked, &p("path=d")), ["d/x", "d/y/"]);
    }

    #[test]
    fn a_subdir_equal_to_the_marker_is_not_listed_again() {
        let names = ["a/1", "a/2", "a/b/3", "a/b/4", "b/5", "c"];
        assert_eq!(
            run(&names, &p("prefix=a/&delimiter=/&marker=a/b/")),
            Vec::<String>::new()
        );
        assert_eq!(run(&names, &p("delimiter=/&marker=a/")), ["[b/]", "c"]);
        assert_eq!(
            run(&names, &p("delimiter=/&marker=a/1")),
            ["[a/]", "[b/]", "c"]
        );
        assert_eq!(
            run(&names, &p("delimiter=/&reverse=on&marker=c")),
            ["[b/]", "[a/]"]
        );
        // pages of one, as `swift list` asks for them, end
        let mut marker = String::new();
        let mut seen = Vec::new();
        loop {
            let page = run(&names, &p(&format!("delimiter=/&limit=1&marker={marker}")));
            let Some(last) = page.last() else { break };
            marker = last
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            seen.push(last.clone());
            assert!(seen.len() < 10, "the listing never ends: {seen:?}");
        }
        assert_eq!(seen, ["[a/]", "[b/]", "c"]);
    }
}
