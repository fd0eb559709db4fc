//! Vectors from Kamailio 5.6 with libjansson 2.14 (Debian 12), run live.

use super::*;
use crate::modules::script_tests;

const DOC: &str = r#"{"a":{"b":[10,"x",true,false,null,1.5,3000000000,{"k":"v"}],"s":"he said \"hi\""},"z":0.1,"u":"\u00e9/\t"}"#;

fn get(path: &str, doc: &str) -> Option<Value<'static>> {
    let json = load(doc.as_bytes()).ok()?;
    path_get(&json, path).map(to_value)
}

fn s(v: &str) -> Option<Value<'static>> {
    Some(Value::owned(v.as_bytes().to_vec()))
}

#[test]
fn values_read_as_kamailio_reads_them() {
    assert_eq!(get("a.b[0]", DOC), Some(Value::Int(10)));
    assert_eq!(get("a.b[1]", DOC), s("x"));
    assert_eq!(get("a.b[2]", DOC), Some(Value::Int(1)));
    assert_eq!(get("a.b[3]", DOC), Some(Value::Int(0)));
    assert_eq!(get("a.b[4]", DOC), Some(Value::Null));
    assert_eq!(get("a.b[5]", DOC), s("1.5"));
    assert_eq!(get("a.b[6]", DOC), s("3000000000"), "beyond 32 bits: text");
    assert_eq!(get("a.b[7]", DOC), s(r#"{"k":"v"}"#));
    assert_eq!(
        get("a", DOC),
        s(r#"{"b":[10,"x",true,false,null,1.5,3000000000,{"k":"v"}],"s":"he said \"hi\""}"#)
    );
    assert_eq!(get("z", DOC), s("0.1"), "15 digits when read");
    assert_eq!(get("u", DOC), s("é/\t"));
    assert_eq!(
        get("", DOC),
        s(
            r#"{"a":{"b":[10,"x",true,false,null,1.5,3000000000,{"k":"v"}],"s":"he said \"hi\""},"z":0.10000000000000001,"u":"é/\t"}"#
        ),
        "17 digits when written"
    );
    assert_eq!(get("[0]", "[7,8]"), Some(Value::Int(7)));
    assert_eq!(get("[0x1]", "[7,8]"), Some(Value::Int(8)), "strtol base 0");
    assert_eq!(get("a.", r#"{"a":1}"#), Some(Value::Int(1)));
}

#[test]
fn missing_values_and_bad_documents_fail() {
    assert_eq!(get("a.nope", DOC), None);
    assert_eq!(get("a.b[9]", DOC), None);
    assert_eq!(get("a.b[-1]", DOC), None);
    assert_eq!(get("a.b[1]x", DOC), None, "text after an index");
    assert_eq!(get("a.b[1", DOC), None, "unclosed index");
    assert_eq!(get("z.x", DOC), None, "a key on a number");
    assert!(load(b"5").is_err(), "a document is an object or an array");
    assert!(load(br#"{"a":1,"a":2}"#).is_err(), "a key twice");
    assert!(
        load(br#"{"a":[{"b":1,"b":1}]}"#).is_err(),
        "a key twice, deeper"
    );
    assert!(load(b"").is_err());
}

fn set_all(steps: &[(&str, &str, &str, bool)]) -> Vec<Result<String, String>> {
    let mut doc = load(b"{}").unwrap();
    steps
        .iter()
        .map(|(t, path, value, append)| {
            let v = ValueType::parse(t.as_bytes()).unwrap().make(value)?;
            let mut next = doc.clone();
            path_set(&mut next, path, v, *append)?;
            doc = next;
            let mut out = String::new();
            dump(&mut out, &doc);
            Ok(out)
        })
        .collect()
}

#[test]
fn documents_are_built_as_kamailio_builds_them() {
    let got = set_all(&[
        ("string", "x.y", "v1", false),
        ("int", "x.n", "42", false),
        ("real", "x.r", "0.1", false),
        ("true", "t", "", false),
        ("null", "nu", "", false),
        ("array", "arr", "[1,2]", false),
        ("int", "arr", "3", true),
        ("obj", "x", r#"{"q":1}"#, false),
        ("obj", "x", r#"{"w":2,"q":5}"#, true),
        ("string", "arr[0]", "zero", false),
        ("string", "arr[5]", "zero", false),
        ("int", "k", "4x", false),
        ("string", "m[0]", "z", false),
        ("string", "s", "a\"b\\c\td/é", false),
    ]);
    let want = [
        Ok(r#"{"x":{"y":"v1"}}"#),
        Ok(r#"{"x":{"y":"v1","n":42}}"#),
        Ok(r#"{"x":{"y":"v1","n":42,"r":0.10000000000000001}}"#),
        Ok(r#"{"x":{"y":"v1","n":42,"r":0.10000000000000001},"t":true}"#),
        Ok(r#"{"x":{"y":"v1","n":42,"r":0.10000000000000001},"t":true,"nu":null}"#),
        Ok(r#"{"x":{"y":"v1","n":42,"r":0.10000000000000001},"t":true,"nu":null,"arr":[1,2]}"#),
        Ok(r#"{"x":{"y":"v1","n":42,"r":0.10000000000000001},"t":true,"nu":null,"arr":[1,2,3]}"#),
        Ok(r#"{"x":{"q":1},"t":true,"nu":null,"arr":[1,2,3]}"#),
        Ok(r#"{"x":{"q":5,"w":2},"t":true,"nu":null,"arr":[1,2,3]}"#),
        Ok(r#"{"x":{"q":5,"w":2},"t":true,"nu":null,"arr":["zero",2,3]}"#),
        Err("array index out of bound"),
        Err(r#"parsing int failed for "4x""#),
        Err("new array is not allowed"),
        Ok(r#"{"x":{"q":5,"w":2},"t":true,"nu":null,"arr":["zero",2,3],"s":"a\"b\\c\td/é"}"#),
    ];
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.as_deref().map_err(String::as_str), w, "step {i}");
    }
}

#[test]
fn reals_are_written_with_17_digits() {
    for (x, want) in [
        (3.0, "3.0"),
        (1e300, "1.0000000000000001e300"),
        (0.1, "0.10000000000000001"),
        (1.5, "1.5"),
        (-2.0, "-2.0"),
        (1e-5, "1.0000000000000001e-5"),
        (123456.789, "123456.789"),
    ] {
        assert_eq!(jansson_real(x), want);
    }
    assert_eq!(fmt_g(0.1, 15), "0.1");
    assert_eq!(fmt_g(3.0, 15), "3");
    assert_eq!(fmt_g(1e20, 15), "1e+20");
    assert_eq!(fmt_g(0.0001234, 15), "0.0001234");
    assert_eq!(fmt_g(0.00001234, 15), "1.234e-05");
}

#[test]
fn control_characters_are_escaped_and_nothing_else() {
    let mut out = String::new();
    dump_string(&mut out, "a\u{1}b/é\u{7f}");
    assert_eq!(out, "\"a\\u0001b/é\u{7f}\"");
}

#[test]
fn the_functions_from_a_script() {
    let sent = script_tests::run(
        r#"loadmodule "jansson.so"
request_route {
    $var(j) = "{\"a\":{\"b\":[1,\"two\"]},\"n\":null}";
    jansson_get("a.b[1]", "$var(j)", "$var(g)");
    jansson_array_size("a.b", "$var(j)", "$var(n)");
    $var(keep) = "keep";
    if (!jansson_get("a.c", "$var(j)", "$var(keep)")) { $var(f) = $rc; }
    jansson_get_field("$var(j)", "a", "$var(gf)");
    $var(o) = 0;
    jansson_set("string", "x.y", "$rm", "$var(o)");
    jansson_append("int", "", "5", "$var(o)");
    $var(arr) = "[1]";
    jansson_append("string", "", "end", "$var(arr)");
    $var(bad) = "";
    if (!jansson_set("int", "k", "1", "$var(bad)")) { $var(fb) = $rc; }
    append_to_reply("X-J: $var(g)|$var(n)|$var(keep)|$var(f)|$var(gf)|$var(o)|$var(arr)|[$var(bad)]|$var(fb)\r\n");
    sl_send_reply("200", "OK");
}"#,
        crate::modules::testutil::INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains(
            "X-J: two|2|keep|-1|{\"b\":[1,\"two\"]}|{\"x\":{\"y\":\"INVITE\"}}|[1,\"end\"]|[]|-1\n"
        ),
        "{}",
        sent[0]
    );
}

#[test]
fn an_unknown_type_is_refused_at_start() {
    use crate::script::{compile::compile, parse_str, MemoryFiles, Options};
    let text = "loadmodule \"jansson.so\"\n\
                request_route {\n    jansson_set(\"bool\", \"a\", \"1\", \"$var(o)\");\n}\n";
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", text, &Options::with_files(&files)).unwrap();
    let err = compile(&cfg).unwrap_err().rendered().join("\n");
    assert!(err.contains("t.cfg:3"), "{err}");
    assert!(err.contains("unknown type \"bool\""), "{err}");
}
