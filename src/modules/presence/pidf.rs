//! PIDF documents (RFC 3863): what presence_xml checks of a published body
//! and how the documents of one presentity become the one a watcher gets.
//!
//! As presence_xml 5.6 aggregates (`agregate_xmls`), on the text here:
//! the newest document is the frame. Each older one, newest first, is
//! skipped when its first `<tuple>` has the id of a tuple already in the
//! frame's root; otherwise every child of its root (white space included)
//! is added at the end of the frame's root. An element copied out of its
//! document declares the namespaces it uses that its root declared
//! (libxml2 copies a node so), e.g. `<tuple xmlns="urn:…:pidf" id="t1">`.
//! The result is written as libxml2 writes a document: the XML
//! declaration, a line break, the root element, a line break.

use bytes::Bytes;

/// Whether `body` is an XML document: after white space, a `<`, and a
/// closing `>` at the end. presence_xml answers a body its parser cannot
/// read with 415.
pub fn looks_like_xml(body: &[u8]) -> bool {
    let t = crate::sip::scan::trim_lws(body);
    t.first() == Some(&b'<') && t.last() == Some(&b'>')
}

/// The document for the watchers of one presentity from its publications
/// (oldest first): `None` without any.
pub fn aggregate(bodies: &[&[u8]]) -> Option<Bytes> {
    let (newest, older) = bodies.split_last()?;
    let Some(frame) = Doc::parse(newest) else {
        return Some(Bytes::copy_from_slice(newest));
    };
    let mut children = frame.children().to_vec();
    for body in older.iter().rev() {
        let Some(doc) = Doc::parse(body) else {
            continue;
        };
        let first_tuple_id = top_elements(doc.children())
            .into_iter()
            .find(|e| e.local == b"tuple")
            .and_then(|e| attr(e.start_tag, b"id"));
        if let Some(id) = first_tuple_id {
            let taken = top_elements(&children).iter().any(|e| {
                e.local == b"tuple"
                    && attr(e.start_tag, b"id").is_some_and(|i| i.eq_ignore_ascii_case(id))
            });
            if taken {
                continue;
            }
        }
        children.extend_from_slice(&doc.children_declared());
    }
    Some(Bytes::from(frame.write(&children)))
}

/// `first` with the root children of each of `rest` (taken in the order
/// given) added, as [`aggregate`] adds them.
pub fn merge(first: &[u8], rest: &[&[u8]]) -> Vec<u8> {
    let mut all: Vec<&[u8]> = rest.iter().rev().copied().collect();
    all.push(first);
    aggregate(&all).map(|b| b.to_vec()).unwrap_or_default()
}

/// A document split where the aggregation needs it.
struct Doc<'a> {
    text: &'a [u8],
    /// `version` and `encoding` of the XML declaration.
    version: &'a [u8],
    encoding: Option<&'a [u8]>,
    /// The root's start tag (`<presence …>`), from `<` to `>`.
    root_start: std::ops::Range<usize>,
    /// The root's end tag.
    root_end: std::ops::Range<usize>,
}

impl<'a> Doc<'a> {
    fn parse(text: &'a [u8]) -> Option<Doc<'a>> {
        let mut i = 0;
        let (mut version, mut encoding): (&[u8], Option<&[u8]>) = (b"1.0", None);
        loop {
            let lt = i + memchr::memchr(b'<', text.get(i..)?)?;
            let gt = lt + memchr::memchr(b'>', &text[lt..])?;
            let tag = &text[lt..=gt];
            if tag.starts_with(b"<?xml") {
                version = attr(tag, b"version").unwrap_or(b"1.0");
                encoding = attr(tag, b"encoding");
            } else if !tag.starts_with(b"<?") && !tag.starts_with(b"<!") {
                let root_end_gt = text.iter().rposition(|&b| b == b'>')?;
                let root_end_lt = text[..root_end_gt].iter().rposition(|&b| b == b'<')?;
                if root_end_lt <= gt || text.get(root_end_lt + 1) != Some(&b'/') {
                    return None;
                }
                return Some(Doc {
                    text,
                    version,
                    encoding,
                    root_start: lt..gt + 1,
                    root_end: root_end_lt..root_end_gt + 1,
                });
            }
            i = gt + 1;
        }
    }

    /// What lies between the root's tags.
    fn children(&self) -> &'a [u8] {
        &self.text[self.root_start.end..self.root_end.start]
    }

    /// The root's children, each top element declaring the namespaces it
    /// uses from the root.
    fn children_declared(&self) -> Vec<u8> {
        let decls = namespace_decls(&self.text[self.root_start.clone()]);
        let children = self.children();
        let mut out = Vec::with_capacity(children.len() + 64);
        let mut at = 0;
        for el in top_elements(children) {
            let start = el.offset;
            out.extend_from_slice(&children[at..start + 1 + el.name.len()]);
            let mut declared_inside = Vec::new();
            let mut used: Vec<&[u8]> = Vec::new();
            for tag in start_tags(el.text) {
                for (name, _) in attrs(tag) {
                    if name == b"xmlns" {
                        declared_inside.push(&b""[..]);
                    } else if let Some(p) = name.strip_prefix(b"xmlns:") {
                        declared_inside.push(p);
                    }
                }
                let name = tag_name(tag);
                let mut prefixes = vec![prefix(name).unwrap_or(b"")];
                for (a, _) in attrs(tag) {
                    if let Some(p) = prefix(a) {
                        if p != b"xmlns" && p != b"xml" {
                            prefixes.push(p);
                        }
                    }
                }
                for p in prefixes {
                    if !used.contains(&p) {
                        used.push(p);
                    }
                }
            }
            for p in used {
                if declared_inside.contains(&p) {
                    continue;
                }
                if let Some((_, uri)) = decls.iter().find(|(q, _)| *q == p) {
                    out.extend_from_slice(b" xmlns");
                    if !p.is_empty() {
                        out.push(b':');
                        out.extend_from_slice(p);
                    }
                    out.extend_from_slice(b"=\"");
                    out.extend_from_slice(uri);
                    out.push(b'"');
                }
            }
            at = start + 1 + el.name.len();
        }
        out.extend_from_slice(&children[at..]);
        out
    }

    /// The document with `children` in its root, as libxml2 writes it.
    fn write(&self, children: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + children.len() + 64);
        out.extend_from_slice(b"<?xml version=\"");
        out.extend_from_slice(self.version);
        out.push(b'"');
        if let Some(e) = self.encoding {
            out.extend_from_slice(b" encoding=\"");
            out.extend_from_slice(e);
            out.push(b'"');
        }
        out.extend_from_slice(b"?>\n");
        out.extend_from_slice(&self.text[self.root_start.clone()]);
        out.extend_from_slice(children);
        out.extend_from_slice(&self.text[self.root_end.clone()]);
        out.push(b'\n');
        out
    }
}

/// A child element of the root, as written.
struct Element<'a> {
    /// Where its `<` is in the children's text.
    offset: usize,
    name: &'a [u8],
    local: &'a [u8],
    start_tag: &'a [u8],
    /// From `<` to its end tag's `>` (or the `/>`).
    text: &'a [u8],
}

/// The elements directly in `children` (the text between a root's tags).
fn top_elements(children: &[u8]) -> Vec<Element<'_>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut open: Option<(usize, usize)> = None;
    while let Some(off) = memchr::memchr(b'<', &children[i..]) {
        let at = i + off;
        let Some(gt) = memchr::memchr(b'>', &children[at..]).map(|g| at + g) else {
            break;
        };
        let tag = &children[at..=gt];
        i = gt + 1;
        match tag.get(1) {
            Some(b'?') | Some(b'!') => continue,
            Some(b'/') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    if let Some((s, tag_end)) = open.take() {
                        out.push(element(children, s, tag_end, gt));
                    }
                }
            }
            _ if tag.ends_with(b"/>") => {
                if depth == 0 {
                    out.push(element(children, at, gt, gt));
                }
            }
            _ => {
                if depth == 0 {
                    open = Some((at, gt));
                }
                depth += 1;
            }
        }
    }
    out
}

fn element(children: &[u8], start: usize, tag_end: usize, end: usize) -> Element<'_> {
    let start_tag = &children[start..=tag_end];
    let name = tag_name(start_tag);
    Element {
        offset: start,
        name,
        local: match prefix(name) {
            Some(p) => &name[p.len() + 1..],
            None => name,
        },
        start_tag,
        text: &children[start..=end],
    }
}

/// Every start tag in `text` (`<name …>` or `<name …/>`).
fn start_tags(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &text[i..]) {
        let at = i + off;
        let Some(gt) = memchr::memchr(b'>', &text[at..]).map(|g| at + g) else {
            break;
        };
        if !matches!(text.get(at + 1), Some(b'/' | b'?' | b'!')) {
            out.push(&text[at..=gt]);
        }
        i = gt + 1;
    }
    out
}

/// The name of a start tag.
fn tag_name(tag: &[u8]) -> &[u8] {
    let inner = &tag[1.min(tag.len())..];
    let end = inner
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
        .unwrap_or(inner.len());
    &inner[..end]
}

/// The prefix of a qualified name.
fn prefix(name: &[u8]) -> Option<&[u8]> {
    name.iter().position(|&b| b == b':').map(|i| &name[..i])
}

/// The attributes of a start tag, `name="value"` or `name='value'`.
fn attrs(tag: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut i = 1 + tag_name(tag).len();
    loop {
        while tag.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        let Some(eq) = tag
            .get(i..)
            .and_then(|t| memchr::memchr(b'=', t))
            .map(|e| i + e)
        else {
            break;
        };
        let name = crate::sip::scan::trim_lws(&tag[i..eq]);
        let mut v = eq + 1;
        while tag.get(v).is_some_and(|b| b.is_ascii_whitespace()) {
            v += 1;
        }
        let Some(&q) = tag.get(v).filter(|q| **q == b'"' || **q == b'\'') else {
            break;
        };
        let Some(close) = memchr::memchr(q, &tag[v + 1..]).map(|c| v + 1 + c) else {
            break;
        };
        out.push((name, &tag[v + 1..close]));
        i = close + 1;
    }
    out
}

/// The value of attribute `name` of a start tag (or declaration).
fn attr<'a>(tag: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    attrs(tag)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// `(prefix, uri)` of the `xmlns` declarations of a start tag (`""` the default).
fn namespace_decls(tag: &[u8]) -> Vec<(&[u8], &[u8])> {
    attrs(tag)
        .into_iter()
        .filter_map(|(n, v)| {
            if n == b"xmlns" {
                Some((&b""[..], v))
            } else {
                n.strip_prefix(b"xmlns:").map(|p| (p, v))
            }
        })
        .collect()
}

/// The `<tuple>`, `<person>` and `<device>` elements directly in the root of `doc`.
pub fn status_elements(doc: &[u8]) -> Vec<&[u8]> {
    let Some(d) = Doc::parse(doc) else {
        return Vec::new();
    };
    top_elements(d.children())
        .into_iter()
        .filter(|e| matches!(e.local, b"tuple" | b"person" | b"device"))
        .map(|e| e.text)
        .collect()
}
