//! Bencode, the encoding of rtpengine's "ng" control protocol: integers
//! `i42e`, byte strings `5:hello`, lists `l…e`, dictionaries `d…e` whose
//! keys are byte strings.

/// A bencoded value. Dictionaries keep their keys in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

/// How deep lists and dictionaries may nest in an answer.
const MAX_DEPTH: usize = 32;

impl Value {
    pub fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Bytes(s.as_ref().to_vec())
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::List(items) => {
                out.push(b'l');
                for i in items {
                    i.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Value::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one value that must fill `input`.
    pub fn decode(input: &[u8]) -> Result<Value, String> {
        let (v, rest) = decode_at(input, 0)?;
        if !rest.is_empty() {
            return Err(format!("{} bytes after the value", rest.len()));
        }
        Ok(v)
    }

    /// The value of `key` in a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

fn decode_at(input: &[u8], depth: usize) -> Result<(Value, &[u8]), String> {
    if depth > MAX_DEPTH {
        return Err("nested too deep".into());
    }
    match input.first() {
        Some(b'i') => {
            let end = input
                .iter()
                .position(|&b| b == b'e')
                .ok_or("unterminated integer")?;
            let text = std::str::from_utf8(&input[1..end]).map_err(|_| "bad integer")?;
            let n: i64 = text
                .parse()
                .map_err(|_| format!("bad integer \"{text}\""))?;
            Ok((Value::Int(n), &input[end + 1..]))
        }
        Some(b'l') => {
            let mut rest = &input[1..];
            let mut items = Vec::new();
            loop {
                match rest.first() {
                    Some(b'e') => return Ok((Value::List(items), &rest[1..])),
                    Some(_) => {
                        let (v, r) = decode_at(rest, depth + 1)?;
                        items.push(v);
                        rest = r;
                    }
                    None => return Err("unterminated list".into()),
                }
            }
        }
        Some(b'd') => {
            let mut rest = &input[1..];
            let mut entries = Vec::new();
            loop {
                match rest.first() {
                    Some(b'e') => return Ok((Value::Dict(entries), &rest[1..])),
                    Some(_) => {
                        let (k, r) = decode_at(rest, depth + 1)?;
                        let Value::Bytes(k) = k else {
                            return Err("dictionary key is not a string".into());
                        };
                        let (v, r) = decode_at(r, depth + 1)?;
                        entries.push((k, v));
                        rest = r;
                    }
                    None => return Err("unterminated dictionary".into()),
                }
            }
        }
        Some(b'0'..=b'9') => {
            let colon = input
                .iter()
                .position(|&b| b == b':')
                .ok_or("string without length")?;
            let len: usize = std::str::from_utf8(&input[..colon])
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or("bad string length")?;
            let body = &input[colon + 1..];
            if body.len() < len {
                return Err("string longer than the input".into());
            }
            Ok((Value::Bytes(body[..len].to_vec()), &body[len..]))
        }
        Some(other) => Err(format!("unexpected byte 0x{other:02x}")),
        None => Err("empty input".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = Value::Dict(vec![
            (b"command".to_vec(), Value::str("offer")),
            (
                b"flags".to_vec(),
                Value::List(vec![Value::str("trust-address")]),
            ),
            (b"n".to_vec(), Value::Int(-12)),
        ]);
        let bytes = v.to_bytes();
        assert_eq!(
            bytes,
            b"d7:command5:offer5:flagsl13:trust-addresse1:ni-12ee".to_vec()
        );
        assert_eq!(Value::decode(&bytes), Ok(v.clone()));
        assert_eq!(
            v.get("command").and_then(Value::as_bytes),
            Some(&b"offer"[..])
        );
        assert_eq!(v.get("nope"), None);
        assert_eq!(Value::decode(b"0:"), Ok(Value::str("")));
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            &b""[..],
            b"d",
            b"l",
            b"i12",
            b"ixe",
            b"5:abc",
            b"d1:ae",
            b"di1ei2ee",
            b"x",
            b"3:abcd",
            b"99999999999999999999999:a",
        ] {
            assert!(
                Value::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "l".repeat(100) + &"e".repeat(100);
        assert!(Value::decode(deep.as_bytes()).is_err());
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(256))]
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = Value::decode(&data);
        }
    }
}
