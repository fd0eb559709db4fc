//! Pseudo-variables of rules read from the database (a `repl_exp`'s
//! variables, `match_dynamic` expressions): the names are resolved against
//! the running configuration when a message needs them, then printed.
//! Supported: variables with fixed names (`$rU`, `$var(x)`, `$avp(s:x)`,
//! `$hdr(X)`, `$shv(x)`, `$sht(t=>k)` with a fixed key…), an index, and
//! transformations. A `$var` the configuration never uses reads as 0.

use bytes::Bytes;

use crate::script::format::{Format as AstFormat, FormatPart as AstPart};
use crate::script::ir::{Format, FormatPart, Program};
use crate::script::pv::{AvpName, Pv, PvIndex as AstIndex, PvName};
use crate::script::pvkind::{self, AvpKey, PvIndex, PvKind, PvRef};
use crate::script::transform;
use crate::script::value::Value;

/// Names resolved against a compiled configuration.
struct ProgramNames<'p>(&'p Program);

impl pvkind::Resolver for ProgramNames<'_> {
    fn var_slot(&mut self, name: &str) -> u32 {
        let slot = self.0.var_names.iter().position(|n| n == name);
        slot.map_or(u32::MAX, |i| i as u32)
    }
    fn shv_slot(&mut self, name: &str) -> u32 {
        let slot = self.0.shv_names.iter().position(|n| n == name);
        slot.map_or(u32::MAX, |i| i as u32)
    }
    fn htable(&mut self, name: &str) -> Option<u32> {
        self.0
            .htables
            .iter()
            .position(|t| t.name == name)
            .map(|i| i as u32)
    }
    fn cfg(&mut self, _: &str) -> Option<Value<'static>> {
        None
    }
    fn cfg_get(&mut self, _: &str) -> Option<Value<'static>> {
        None
    }
}

fn resolve_pv(pv: &Pv, program: &Program) -> Result<PvRef, String> {
    let mut names = ProgramNames(program);
    let kind = match (pv.name.as_str(), &pv.inner) {
        (class, None) => pvkind::resolve(class, None, &mut names)?,
        (class, Some(PvName::Text(t))) => pvkind::resolve(class, Some(t), &mut names)?,
        ("avp", Some(PvName::Avp(AvpName::Int(i)))) => PvKind::Avp(AvpKey::Int(*i)),
        ("avp", Some(PvName::Avp(AvpName::Str(s)))) if !s.is_empty() => {
            PvKind::Avp(AvpKey::Str(Bytes::copy_from_slice(s.as_bytes())))
        }
        _ => return Err(format!("{}: not supported in a dialplan rule", pv.raw)),
    };
    let index = match &pv.index {
        None => None,
        Some(AstIndex::Int(n)) => Some(PvIndex::At(
            i32::try_from(*n).map_err(|_| format!("{}: index out of range", pv.raw))?,
        )),
        Some(AstIndex::All) => Some(PvIndex::All),
        Some(AstIndex::Pv(_)) => {
            return Err(format!(
                "{}: a computed index is not supported here",
                pv.raw
            ))
        }
    };
    let transforms = if pv.transforms.is_empty() {
        None
    } else {
        let mut inner = |p: &Pv| resolve_pv(p, program);
        Some(
            transform::compile_chain(&pv.transforms, &mut inner)
                .map_err(|e| format!("{}: {e}", pv.raw))?,
        )
    };
    Ok(PvRef {
        kind,
        index,
        transforms,
    })
}

/// `f` with its variables resolved against `program`.
pub fn resolve(f: &AstFormat, program: &Program) -> Result<Format, String> {
    let mut parts = Vec::with_capacity(f.parts.len());
    for p in &f.parts {
        parts.push(match p {
            AstPart::Literal(s) => FormatPart::Lit(Bytes::copy_from_slice(s.as_bytes())),
            AstPart::Pv(pv) => FormatPart::Pv(resolve_pv(pv, program)?),
        });
    }
    Ok(Format { parts })
}
