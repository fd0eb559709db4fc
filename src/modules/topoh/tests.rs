//! topoh against what Kamailio 5.6.3 sent with the same settings
//! (loadtest/sidebyside/configs/topoh.cfg: key `ringsip-topoh-key`, mask
//! address 10.10.10.10, Call-ID masking on).

use super::*;

const KEY: &[u8] = b"ringsip-topoh-key";

fn mask() -> Mask {
    Mask::new(KEY).expect("key")
}

#[test]
fn call_id_and_contacts_encode_as_kamailio_did() {
    let m = mask();
    assert_eq!(m.encode(b"call-1@uac", b"!!:"), b"!!:BqJeHiwPpCyWBT**");
    assert_eq!(
        m.encode(b"sip:uac@127.0.0.62:5070", b"sip:10.10.10.10;line=sr-"),
        b"sip:10.10.10.10;line=sr-Nq9TUMyWBwdPcVNgci8T4VBbUVSTYsd*".to_vec()
    );
    assert_eq!(
        m.encode(b"sip:uas@127.0.0.63:5080", b"sip:10.10.10.10;line=sr-"),
        b"sip:10.10.10.10;line=sr-Nq9TUMyWNwdPcVNgci8T4VBsUVSTU1d*".to_vec()
    );
}

#[test]
fn kamailios_masked_via_decodes() {
    let v = b"z9hG4bKsr-Sw9p4s6gciIy3JdZco624Vdgci8qcVQnc1NTU2x9BqytrKyROo.bYb8T4VdgYV67y.ZIGl9qUqxbBXvVE1njUXWCYlx44XYWHlTPrXJVU2xTH2xwOoSTYsd*";
    let out = mask().decode(v, 10).expect("decodes");
    eprintln!("{}", String::from_utf8_lossy(&out));
    assert!(out.starts_with(b"SIP/2.0/UDP 127.0.0.62:5070;"));
}
