//! PIDF documents (RFC 3863): what presence_xml checks of a published body
//! and how the documents of one presentity become the one a watcher gets.
//!
//! Kamailio merges the documents: the first is the frame, and the `<tuple>`,
//! `<person>` and `<device>` elements of the others go into its root
//! (presence_xml `agregate_xmls`). A single document goes out as published.
//! Here the merge is done on the text: the elements are copied as they
//! were written, before the frame's closing `</presence>` (namespace
//! prefixes the documents declare differently are not rewritten).

use bytes::Bytes;

/// Whether `body` is an XML document: after white space, a `<`, and a
/// closing tag at the end. presence_xml refuses a body its parser
/// cannot read (500).
pub fn looks_like_xml(body: &[u8]) -> bool {
    let t = crate::sip::scan::trim_lws(body);
    t.first() == Some(&b'<') && t.last() == Some(&b'>')
}

/// The document for the watchers of one presentity from its publications
/// (oldest first): `None` without any, the document itself for one, the
/// merge ([`merge`]) for several.
pub fn aggregate(bodies: &[&[u8]]) -> Option<Bytes> {
    match bodies {
        [] => None,
        [one] => Some(Bytes::copy_from_slice(one)),
        [first, rest @ ..] => Some(Bytes::from(merge(first, rest))),
    }
}

/// `first` with the status elements of each of `rest` added before its
/// root's end tag. A document whose root cannot be found adds nothing.
pub fn merge(first: &[u8], rest: &[&[u8]]) -> Vec<u8> {
    let Some(close) = root_close(first) else {
        return first.to_vec();
    };
    let mut out = Vec::with_capacity(first.len() + rest.iter().map(|r| r.len()).sum::<usize>());
    out.extend_from_slice(&first[..close]);
    for doc in rest {
        for el in status_elements(doc) {
            out.extend_from_slice(b"  ");
            out.extend_from_slice(el);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(&first[close..]);
    out
}

/// Where the root element's end tag (`</presence>` or `</p:presence>`) starts.
fn root_close(doc: &[u8]) -> Option<usize> {
    let end = doc.iter().rposition(|&b| b == b'>')?;
    let start = doc[..end].iter().rposition(|&b| b == b'<')?;
    (doc.get(start + 1) == Some(&b'/') && local_name(&doc[start + 2..end]) == b"presence")
        .then_some(start)
}

/// `name` without its namespace prefix.
fn local_name(name: &[u8]) -> &[u8] {
    let name = crate::sip::scan::trim_lws(name);
    match name.iter().position(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// The `<tuple>`, `<person>` and `<device>` elements that are children of
/// the root of `doc`, each as written (from `<` to its end tag's `>`).
pub fn status_elements(doc: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut start: Option<usize> = None;
    while let Some(off) = memchr::memchr(b'<', &doc[i..]) {
        let at = i + off;
        let Some(gt) = memchr::memchr(b'>', &doc[at..]).map(|g| at + g) else {
            break;
        };
        let tag = &doc[at + 1..gt];
        i = gt + 1;
        match tag.first() {
            Some(b'?') | Some(b'!') => continue,
            Some(b'/') => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    if let Some(s) = start.take() {
                        out.push(&doc[s..=gt]);
                    }
                }
            }
            _ => {
                let name_end = tag
                    .iter()
                    .position(|b| b.is_ascii_whitespace() || *b == b'/')
                    .unwrap_or(tag.len());
                let wanted = matches!(
                    local_name(&tag[..name_end]),
                    b"tuple" | b"person" | b"device"
                );
                if tag.last() == Some(&b'/') {
                    // An empty element: <tuple id="x"/>.
                    if depth == 1 && wanted {
                        out.push(&doc[at..=gt]);
                    }
                    continue;
                }
                if depth == 1 && wanted {
                    start = Some(at);
                }
                depth += 1;
            }
        }
    }
    out
}
