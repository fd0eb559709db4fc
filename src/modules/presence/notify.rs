//! A NOTIFY of a subscription (RFC 6665 §4.2.2), written as Kamailio's
//! presence module sends it through tm:
//!
//! ```text
//! NOTIFY <watcher's Contact> SIP/2.0
//! Via: SIP/2.0/UDP <socket>;branch=…
//! To: <sip:watcher@domain>;tag=<SUBSCRIBE From-tag>
//! From: <presentity URI>;tag=<our To-tag>
//! CSeq: <local CSeq> NOTIFY
//! Call-ID: <the subscription's>
//! Route: <the SUBSCRIBE's Record-Route, in order>      (when there was one)
//! Content-Length: N
//! User-Agent: …
//! Max-Forwards: 70
//! Event: presence[;id=…]
//! Contact: <our Contact>
//! Subscription-State: active;expires=N | terminated;reason=…
//! Content-Type: application/pidf+xml            (with a body only)
//! ```

use bytes::Bytes;

use super::state::Subscription;

/// Everything a NOTIFY carries, taken from the subscription when it was
/// decided (the lock is not held while it is sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyJob {
    /// Request-URI: the watcher's Contact.
    pub contact: String,
    /// The route set (the SUBSCRIBE's Record-Route values, comma separated).
    pub route: String,
    pub watcher_uri: String,
    pub from_tag: String,
    pub pres_uri: String,
    pub to_tag: String,
    pub callid: String,
    pub cseq: u32,
    pub event: String,
    pub local_contact: String,
    pub state: String,
    pub content_type: &'static str,
    pub body: Option<Bytes>,
}

impl NotifyJob {
    pub fn new(s: &Subscription, state: String, body: Option<Bytes>) -> NotifyJob {
        let mut event = s.event.name().to_string();
        if let Some(id) = &s.event_id {
            event.push_str(";id=");
            event.push_str(id);
        }
        NotifyJob {
            contact: s.contact.clone(),
            route: s.record_route.clone(),
            watcher_uri: format!("sip:{}@{}", s.from_user, s.from_domain),
            from_tag: s.from_tag.clone(),
            pres_uri: s.pres_uri.clone(),
            to_tag: s.to_tag.clone(),
            callid: s.callid.clone(),
            // Kamailio's first NOTIFY has CSeq 2: one more than the count.
            cseq: s.local_cseq + 1,
            event,
            local_contact: s.local_contact.clone(),
            state,
            content_type: s.event.content_type(),
            body,
        }
    }

    /// The first hop of the route set (loose routing, RFC 3261 §12.2.1.1),
    /// else the Contact: where the NOTIFY goes.
    pub fn next_hop(&self) -> String {
        first_route(&self.route).unwrap_or_else(|| self.contact.clone())
    }

    /// The request, with `via_host` (`host[:port]` of the socket) and the
    /// branch tm gave it.
    pub fn build(
        &self,
        proto: crate::sip::Proto,
        via_host: &[u8],
        branch: &[u8],
        user_agent: &[u8],
    ) -> Bytes {
        let body: &[u8] = self.body.as_deref().unwrap_or(b"");
        let mut m = Vec::with_capacity(512 + body.len());
        let mut line = |parts: &[&[u8]]| {
            for p in parts {
                m.extend_from_slice(p);
            }
            m.extend_from_slice(b"\r\n");
        };
        line(&[b"NOTIFY ", self.contact.as_bytes(), b" SIP/2.0"]);
        line(&[
            b"Via: SIP/2.0/",
            proto.via_name().as_bytes(),
            b" ",
            via_host,
            b";branch=",
            branch,
        ]);
        line(&[
            b"To: <",
            self.watcher_uri.as_bytes(),
            b">;tag=",
            self.from_tag.as_bytes(),
        ]);
        line(&[
            b"From: <",
            self.pres_uri.as_bytes(),
            b">;tag=",
            self.to_tag.as_bytes(),
        ]);
        line(&[
            b"CSeq: ",
            itoa::Buffer::new().format(self.cseq).as_bytes(),
            b" NOTIFY",
        ]);
        line(&[b"Call-ID: ", self.callid.as_bytes()]);
        if !self.route.is_empty() {
            line(&[b"Route: ", self.route.as_bytes()]);
        }
        line(&[
            b"Content-Length: ",
            itoa::Buffer::new().format(body.len()).as_bytes(),
        ]);
        if !user_agent.is_empty() {
            line(&[b"User-Agent: ", user_agent]);
        }
        line(&[b"Max-Forwards: 70"]);
        line(&[b"Event: ", self.event.as_bytes()]);
        line(&[b"Contact: <", self.local_contact.as_bytes(), b">"]);
        line(&[b"Subscription-State: ", self.state.as_bytes()]);
        if !body.is_empty() {
            line(&[b"Content-Type: ", self.content_type.as_bytes()]);
        }
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(body);
        Bytes::from(m)
    }
}

/// The URI of the first entry of a Record-Route / Route value list.
pub fn first_route(route: &str) -> Option<String> {
    let r = route.trim();
    if r.is_empty() {
        return None;
    }
    let start = r.find('<')?;
    let end = r[start..].find('>')? + start;
    Some(r[start + 1..end].to_string())
}

/// One watcher of a watcher-info document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherLine {
    /// The subscription's Call-ID.
    pub id: String,
    pub uri: String,
    pub status: &'static str,
}

/// A watcher-info document (RFC 3858) as Kamailio writes it: `version`
/// counts the subscription's NOTIFYs, `full` or `partial` state.
pub fn winfo_document(resource: &str, version: u32, full: bool, watchers: &[WatcherLine]) -> Bytes {
    let state = if full { "full" } else { "partial" };
    let mut d = format!(
        "<?xml version=\"1.0\"?>\n<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" \
         version=\"{version}\" state=\"{state}\">\n  <watcher-list resource=\"{}\" package=\"presence\"",
        xml_escape(resource)
    );
    if watchers.is_empty() {
        d.push_str("/>\n");
    } else {
        d.push_str(">\n");
        for w in watchers {
            d.push_str(&format!(
                "    <watcher id=\"{}\" event=\"subscribe\" status=\"{}\">{}</watcher>\n",
                xml_escape(&w.id),
                w.status,
                xml_escape(&w.uri)
            ));
        }
        d.push_str("  </watcher-list>\n");
    }
    d.push_str("</watcherinfo>\n");
    Bytes::from(d)
}

/// `&`, `<`, `>` and `"` as XML writes them in text and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
