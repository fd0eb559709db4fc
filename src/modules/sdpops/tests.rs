use super::*;
use crate::modules::testutil::{run, serialized, Harness};
use crate::script::pvkind::{PvKind, PvRef};

const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101 18\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=fmtp:18 annexb=no\r\na=sendrecv\r\nm=video 0 RTP/SAVP 31 96\r\na=rtpmap:96 H264/90000\r\na=inactive\r\n";

fn invite(body: &str) -> String {
    format!(
        "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Content-Type: application/sdp
Content-Length: {}

",
        body.len()
    )
}

fn harness() -> Harness {
    // Harness turns \n into \r\n: the body is given with \n ends.
    let lf = SDP.replace("\r\n", "\n");
    Harness::new(&format!("{}{lf}", invite(SDP)))
}

/// The body of the message as it would be sent.
fn body_of(ctx: &MsgCtx<'_>) -> String {
    let out = serialized(ctx);
    let (_, body) = out.split_once("\n\n").expect("a body");
    body.replace('\n', "\r\n")
}

#[test]
fn remove_codecs_by_id_and_their_attributes() {
    let mut h = harness();
    let mut ctx = h.ctx();
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_remove_codecs_by_id", &["8,101"]),
        1
    );
    let b = body_of(&ctx);
    assert!(b.contains("m=audio 49170 RTP/AVP 0 18\r\n"), "{b}");
    assert!(
        !b.contains("PCMA") && !b.contains("telephone-event") && !b.contains("0-15"),
        "{b}"
    );
    assert!(b.contains("a=fmtp:18 annexb=no\r\n"), "{b}");
    // Content-Length follows the new body.
    let out = serialized(&ctx);
    assert!(
        out.contains(&format!("Content-Length: {}\n", b.len())),
        "{out}"
    );
}

#[test]
fn by_name_uses_rtpmap_and_static_numbers() {
    let mut h = harness();
    let mut ctx = h.ctx();
    assert_eq!(
        run(
            &mut ctx,
            &MODULE,
            "sdp_remove_codecs_by_name",
            &["pcmu,G729"]
        ),
        1
    );
    let b = body_of(&ctx);
    assert!(b.contains("m=audio 49170 RTP/AVP 8 101\r\n"), "{b}");
    assert!(!b.contains("annexb"), "{b}");
    // A second function starts from the body the first left.
    assert_eq!(
        run(
            &mut ctx,
            &MODULE,
            "sdp_keep_codecs_by_name",
            &["PCMA", "audio"]
        ),
        1
    );
    let b = body_of(&ctx);
    assert!(b.contains("m=audio 49170 RTP/AVP 8\r\n"), "{b}");
    assert!(b.contains("m=video 0 RTP/SAVP 31 96\r\n"), "{b}");
    assert_eq!(run(&mut ctx, &MODULE, "sdp_keep_codecs_by_id", &["31"]), 1);
    let b = body_of(&ctx);
    assert!(b.contains("m=audio 49170 RTP/AVP\r\n"), "{b}");
    assert!(
        b.contains("m=video 0 RTP/SAVP 31\r\n") && !b.contains("H264"),
        "{b}"
    );
}

#[test]
fn with_codecs_counts() {
    let mut h = harness();
    let mut ctx = h.ctx();
    // 0 and 8 are in audio but not in video: some found.
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_codecs_by_id", &["0,8"]), 2);
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_codecs_by_id", &["9"]), -1);
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_with_codecs_by_name", &["H264"]),
        2
    );
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_with_codecs_by_name", &["opus"]),
        -1
    );
}

#[test]
fn media_and_transport() {
    let mut h = harness();
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_media", &["AUDIO"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_media", &["image"]), -1);
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_with_active_media", &["audio"]),
        1
    );
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_with_active_media", &["video"]),
        -1
    );
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_with_transport", &["rtp/savp"]),
        1
    );
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_transport", &["RTP"]), -1);
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_with_transport_like", &["SAVP"]),
        1
    );
    assert_eq!(run(&mut ctx, &MODULE, "sdp_remove_media", &["image"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "sdp_remove_media", &["video"]), 1);
    let b = body_of(&ctx);
    assert!(b.ends_with("a=sendrecv\r\n"), "{b}");
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_media", &["video"]), -1);
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_remove_transport", &["RTP/AVP"]),
        1
    );
    let b = body_of(&ctx);
    assert!(b.ends_with("t=0 0\r\n"), "{b}");
}

#[test]
fn lines_by_prefix() {
    let mut h = harness();
    let mut ctx = h.ctx();
    assert_eq!(
        run(
            &mut ctx,
            &MODULE,
            "sdp_remove_line_by_prefix",
            &["a=rtpmap", "video"]
        ),
        1
    );
    let b = body_of(&ctx);
    assert!(!b.contains("H264") && b.contains("PCMU"), "{b}");
    assert_eq!(
        run(&mut ctx, &MODULE, "sdp_remove_line_by_prefix", &["a=fmtp"]),
        1
    );
    assert!(!body_of(&ctx).contains("a=fmtp"));
    let du = || Arg::Pv(PvRef::new(PvKind::Du));
    let args = Args(vec![du(), Arg::Str("c=".into())]);
    assert_eq!(get_line_startswith(&mut ctx, &args), 1);
    assert_eq!(ctx.dst_uri.as_deref(), Some(&b"c=IN IP4 192.0.2.5"[..]));
    let args = Args(vec![du(), Arg::Str("x=".into())]);
    assert_eq!(get_line_startswith(&mut ctx, &args), -1);
    let args = Args(vec![du()]);
    assert_eq!(transport(&mut ctx, &args), -2);
    assert_eq!(get(&mut ctx, &args), 1);
    assert!(ctx.dst_uri.as_deref().unwrap().starts_with(b"v=0\r\n"));
}

#[test]
fn content_and_ice() {
    let mut h = harness();
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "sdp_content", &[]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_ice", &[]), -1);
    drop(ctx);
    let mut h = Harness::new(crate::modules::testutil::INVITE);
    let mut ctx = h.ctx();
    // testutil's INVITE is application/sdp with a body.
    assert_eq!(run(&mut ctx, &MODULE, "sdp_content", &[]), 1);
    drop(ctx);
    let text = invite("").replace("Content-Type: application/sdp\n", "");
    let mut h = Harness::new(&text);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "sdp_content", &[]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "sdp_content", &["sloppy"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "sdp_remove_media", &["audio"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "sdp_with_codecs_by_id", &["0"]), -2);
}

#[test]
fn writable_variable_checked_at_start_up() {
    let mut args = crate::modules::testutil::str_args(&["x"]);
    assert!(fixup_out(&mut args, &ModParams::default()).is_err());
    assert!(MODULE.functions.iter().all(|f| f.routes == RouteMask::ANY));
}

#[test]
fn sdp_body_variable_follows_the_edits() {
    let mut h = harness();
    let mut ctx = h.ctx();
    assert!(body_value(&ctx).to_bytes().starts_with(b"v=0\r\n"));
    assert_eq!(run(&mut ctx, &MODULE, "sdp_remove_media", &["video"]), 1);
    assert!(!body_value(&ctx)
        .to_bytes()
        .windows(7)
        .any(|w| w == b"m=video"));
    drop(ctx);
    let mut h = Harness::new(&invite("").replace("Content-Type: application/sdp\n", ""));
    let ctx = h.ctx();
    assert!(matches!(body_value(&ctx), Value::Null));
}
