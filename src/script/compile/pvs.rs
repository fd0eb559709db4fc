//! Pseudo-variables in the compiler: names resolved to slots, tables and
//! constants, indexes and transformation chains compiled, and the start
//! values of `$shv`/`$var` and the hash tables read from the modparams.

use bytes::Bytes;

use super::super::ast;
use super::super::format;
use super::super::ir::{Format, FormatPart};
use super::super::pv::{AvpName, Pv, PvName};
use super::super::pvkind::{
    self, AvpKey, PvIndex, PvKind, PvRef, ShtOp, ShtRef, XavpClass, XavpPath,
};
use super::super::shared::HtableDef;
use super::super::transform;
use super::super::value::Value;
use super::Compiler;

impl pvkind::Resolver for Compiler<'_> {
    fn var_slot(&mut self, name: &str) -> u32 {
        let next = self.vars.len() as u32;
        *self.vars.entry(name.to_string()).or_insert(next)
    }

    fn null_var_slot(&mut self, name: &str) -> u32 {
        let key = format!("$vn({name})");
        let known = self.vars.contains_key(&key);
        let slot = self.var_slot(&key);
        if !known {
            self.program.var_init.push((slot, Value::Null));
        }
        slot
    }

    fn shv_slot(&mut self, name: &str) -> u32 {
        let next = self.shvs.len() as u32;
        *self.shvs.entry(name.to_string()).or_insert(next)
    }

    fn htable(&mut self, name: &str) -> Option<u32> {
        self.program
            .htables
            .iter()
            .position(|t| t.name == name)
            .map(|i| i as u32)
    }

    fn cfg(&mut self, what: &str) -> Option<Value<'static>> {
        Some(match what {
            "line" => Value::Int(i64::from(self.pv_span.line)),
            "name" | "file" => {
                Value::owned(self.cfg.sources.name(self.pv_span.file).as_bytes().to_vec())
            }
            "route" => Value::owned(self.current_name.as_bytes().to_vec()),
            _ => return None,
        })
    }

    fn define(&mut self, name: &str) -> Option<Option<String>> {
        self.cfg
            .defines
            .iter()
            .rev()
            .find(|d| d.name == name)
            .map(|d| d.value.clone())
    }

    fn cfg_get(&mut self, name: &str) -> Option<Value<'static>> {
        let g = self.cfg.global(name)?;
        Some(match &g.value {
            ast::Value::Int(i) => Value::Int(*i),
            ast::Value::Bool(b) => Value::Int(i64::from(*b)),
            ast::Value::Str(s) | ast::Value::Word(s) => Value::owned(s.as_bytes().to_vec()),
            ast::Value::Sockets(_) => return None,
        })
    }
}

impl Compiler<'_> {
    /// `$shv`/`$var` start values (pv `shvset`/`varset`) and hash tables
    /// (htable `htable`), read from the modparams with their positions.
    pub(super) fn shared_defs(&mut self) {
        let cfg = self.cfg;
        self.mqueue_defs();
        for mp in &cfg.modparams {
            let ast::Value::Str(text) = &mp.value else {
                continue;
            };
            for module in mp.module_names() {
                if self.loaded_module(module).is_none() {
                    continue;
                }
                match (module, mp.param.as_str()) {
                    ("pv", "shvset" | "varset") => match typed_value(text) {
                        Ok((name, value)) => {
                            use pvkind::Resolver as _;
                            if mp.param == "shvset" {
                                let slot = self.shv_slot(name) as usize;
                                let init = &mut self.program.shv_init;
                                if init.len() <= slot {
                                    init.resize(slot + 1, Value::Int(0));
                                }
                                init[slot] = value;
                            } else {
                                let slot = self.var_slot(name);
                                self.program.var_init.push((slot, value));
                            }
                        }
                        Err(e) => self.error(mp.span, format!("{}: {e}", mp.param)),
                    },
                    ("acc", which @ ("log_extra" | "db_extra")) => {
                        match crate::modules::acc::parse_extra(text) {
                            Ok(items) => {
                                for (name, value) in items {
                                    if which == "db_extra" && !crate::store::is_identifier(&name) {
                                        self.error(
                                            mp.span,
                                            format!("acc db_extra: \"{name}\" is not a usable column name"),
                                        );
                                        continue;
                                    }
                                    if let Some(f) = self.format(&value, mp.span) {
                                        let acc = &mut self.program.acc;
                                        if which == "log_extra" {
                                            acc.extra.push((name, f));
                                        } else {
                                            acc.db_extra.push((name, f));
                                        }
                                    }
                                }
                            }
                            Err(e) => self.error(mp.span, e),
                        }
                    }
                    ("sqlops", "sqlcon") => {
                        if let Err(e) = crate::modules::sqlops::parse_sqlcon(text) {
                            self.error(mp.span, format!("sqlops: {e}"));
                        }
                    }
                    (_, "db_url") => {
                        if let Err(e) = crate::store::check_url(text) {
                            self.error(mp.span, format!("{module}: {e}"));
                        }
                    }
                    ("htable", "htable") => match HtableDef::parse(text) {
                        Ok(def) => {
                            if self.program.htables.iter().any(|t| t.name == def.name) {
                                self.error(
                                    mp.span,
                                    format!("hash table \"{}\" is defined twice", def.name),
                                );
                            } else {
                                self.program.htables.push(def);
                            }
                        }
                        Err(e) => self.error(mp.span, e),
                    },
                    _ => {}
                }
            }
        }
    }

    /// Resolves a pseudo-variable; a problem is reported at its place.
    pub(super) fn pv(&mut self, pv: &Pv) -> Option<PvRef> {
        match self.resolve_pv(pv) {
            Ok(r) => Some(r),
            Err(msg) => {
                self.error(pv.span, msg);
                None
            }
        }
    }

    pub(super) fn resolve_pv(&mut self, pv: &Pv) -> Result<PvRef, String> {
        self.pv_span = pv.span;
        let kind = match (pv.name.as_str(), &pv.inner) {
            (class, None) => pvkind::resolve(class, None, self)?,
            ("sqlrows", Some(PvName::Text(con))) => {
                let cons = crate::modules::sqlops::connections(&self.modparams)?;
                let Some(i) = cons.iter().position(|(n, _)| n == con.trim()) else {
                    return Err(format!(
                        "{}: no sqlops connection \"{}\"",
                        pv.raw,
                        con.trim()
                    ));
                };
                PvKind::Dbr(Box::new(crate::modules::sqlops::pv::DbrPv::AffectedRows(i)))
            }
            (class, Some(PvName::Text(t))) => pvkind::resolve(class, Some(t), self)?,
            ("hdr", Some(PvName::Dynamic(f))) => PvKind::HdrDyn(Box::new(self.sub_format(f)?)),
            ("_s", Some(PvName::Dynamic(f))) => PvKind::Fmt(Box::new(self.sub_format(f)?)),
            ("dbr", Some(PvName::Dynamic(f))) => PvKind::Dbr(Box::new(
                crate::modules::sqlops::pv::DbrPv::Dynamic(self.sub_format(f)?),
            )),
            ("avp", Some(PvName::Avp(name))) => match name {
                AvpName::Int(i) => PvKind::Avp(AvpKey::Int(*i)),
                AvpName::Str(s) if s.is_empty() => {
                    return Err(format!("{}: empty AVP name", pv.raw))
                }
                AvpName::Str(s) => PvKind::Avp(AvpKey::Str(Bytes::copy_from_slice(s.as_bytes()))),
                AvpName::Dynamic(f) => PvKind::AvpDyn(Box::new(self.sub_format(f)?)),
            },
            (class @ ("xavp" | "xavu" | "xavi"), Some(PvName::Xavp(segments))) => {
                let (root, field) = match segments.as_slice() {
                    [root] => (root, None),
                    [root, field] => (root, Some(field)),
                    _ => {
                        return Err(format!(
                            "{}: only ${class}(root=>field) is supported (two levels)",
                            pv.raw
                        ))
                    }
                };
                let xclass = match class {
                    "xavu" => XavpClass::Xavu,
                    "xavi" => XavpClass::Xavi,
                    _ => XavpClass::Xavp,
                };
                if xclass == XavpClass::Xavu
                    && (root.index.is_some() || field.is_some_and(|f| f.index.is_some()))
                {
                    return Err(format!(
                        "{}: $xavu holds one value per name and takes no index",
                        pv.raw
                    ));
                }
                // $xavi names are case-insensitive: kept in lower case.
                let name = |n: &str| {
                    if xclass == XavpClass::Xavi {
                        Bytes::from(n.to_ascii_lowercase())
                    } else {
                        Bytes::copy_from_slice(n.as_bytes())
                    }
                };
                let root_index = root.index.as_ref().map(|i| self.index(i)).transpose()?;
                let field = match field {
                    Some(f) => Some((
                        name(&f.name),
                        f.index.as_ref().map(|i| self.index(i)).transpose()?,
                    )),
                    None => None,
                };
                PvKind::Xavp(Box::new(XavpPath {
                    class: xclass,
                    root: name(&root.name),
                    root_index,
                    field,
                }))
            }
            (
                class @ ("sht" | "shtinc" | "shtdec" | "shtex" | "shtcn" | "shtcv"),
                Some(PvName::Htable { table, key }),
            ) => {
                use pvkind::Resolver as _;
                let Some(t) = self.htable(table) else {
                    return Err(format!(
                        "{}: no hash table \"{table}\" (declare it with modparam(\"htable\", \"htable\", \"{table}=>size=8;\"))",
                        pv.raw
                    ));
                };
                let key = self.sub_format(key)?;
                let op = match class {
                    "shtinc" => ShtOp::Inc,
                    "shtdec" => ShtOp::Dec,
                    "shtex" => ShtOp::Expire,
                    "shtcn" => ShtOp::CountNames,
                    "shtcv" => ShtOp::CountValues,
                    _ => ShtOp::Value,
                };
                PvKind::Sht(Box::new(ShtRef { table: t, key, op }))
            }
            (class @ ("T_req" | "T_rpl" | "T_inv" | "cnt"), Some(PvName::Dynamic(f))) => {
                let [format::FormatPart::Pv(inner)] = f.parts.as_slice() else {
                    return Err(format!(
                        "${class} takes one pseudo-variable in parentheses ({})",
                        pv.raw
                    ));
                };
                let inner = Box::new(self.resolve_pv(inner)?);
                match class {
                    "cnt" => PvKind::Cnt(inner),
                    "T_req" => PvKind::TmOther(pvkind::TmOther::Request, inner),
                    "T_rpl" => PvKind::TmOther(pvkind::TmOther::Reply, inner),
                    _ => PvKind::TmOther(pvkind::TmOther::Invite, inner),
                }
            }
            (class @ ("mqk" | "mqv" | "mq_size"), Some(PvName::Dynamic(f))) => {
                use crate::modules::mqueue::{MqName, MqPv};
                let [format::FormatPart::Pv(inner)] = f.parts.as_slice() else {
                    return Err(format!(
                        "${class} takes a queue name or one pseudo-variable in parentheses ({})",
                        pv.raw
                    ));
                };
                PvKind::Mq(Box::new(MqPv {
                    field: MqPv::field(class).unwrap_or(crate::modules::mqueue::MqField::Size),
                    name: MqName::Pv(Box::new(self.resolve_pv(inner)?)),
                }))
            }
            (class, Some(PvName::Dynamic(_))) => {
                return Err(format!(
                    "${class}: a name computed at run time is not supported here ({})",
                    pv.raw
                ))
            }
            (class, Some(_)) => {
                return Err(format!("${class}: unexpected name form in {}", pv.raw))
            }
        };
        let index = pv.index.as_ref().map(|i| self.index(i)).transpose()?;
        let transforms = if pv.transforms.is_empty() {
            None
        } else {
            let mut resolve = |p: &Pv| self.resolve_pv(p);
            Some(
                transform::compile_chain(&pv.transforms, &mut resolve)
                    .map_err(|e| format!("{}: {e}", pv.raw))?,
            )
        };
        self.pv_span = pv.span;
        Ok(PvRef {
            kind,
            index,
            transforms,
        })
    }

    /// mqueue's queues, read in the order written (`mqueue_name` takes the
    /// `mqueue_size`/`mqueue_addmode` set before it).
    fn mqueue_defs(&mut self) {
        if self.loaded_module("mqueue").is_none() {
            return;
        }
        let mut defs = crate::modules::mqueue::Definitions::default();
        for mp in &self.cfg.modparams {
            if mp.module_names().any(|m| m == "mqueue") {
                if let Err(e) = defs.add(&mp.param, &mp.value) {
                    self.error(mp.span, e);
                }
            }
        }
        if defs.queues.is_empty() {
            log::warn!("mqueue: no mqueue defined");
        }
        self.program.mqueues = defs.queues;
    }

    /// A format inside a pseudo-variable (a dynamic name or a hash-table key).
    pub(super) fn sub_format(&mut self, f: &format::Format) -> Result<Format, String> {
        let mut parts = Vec::with_capacity(f.parts.len());
        for p in &f.parts {
            parts.push(match p {
                format::FormatPart::Literal(s) => {
                    FormatPart::Lit(Bytes::copy_from_slice(s.as_bytes()))
                }
                format::FormatPart::Pv(pv) => FormatPart::Pv(self.resolve_pv(pv)?),
            });
        }
        Ok(Format { parts })
    }

    pub(super) fn index(&mut self, i: &super::super::pv::PvIndex) -> Result<PvIndex, String> {
        Ok(match i {
            super::super::pv::PvIndex::Int(n) => {
                PvIndex::At(i32::try_from(*n).map_err(|_| format!("index {n} is out of range"))?)
            }
            super::super::pv::PvIndex::All => PvIndex::All,
            super::super::pv::PvIndex::Pv(p) => PvIndex::Pv(Box::new(self.resolve_pv(p)?)),
        })
    }
}

/// A pv `shvset`/`varset` value: `name=i:1` or `name=s:text`.
pub(super) fn typed_value(text: &str) -> Result<(&str, Value<'static>), String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("\"{text}\" is not name=i:number or name=s:text"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("\"{text}\" has no name"));
    }
    let value = match rest.split_once(':') {
        Some(("i" | "I", n)) => Value::Int(
            n.trim()
                .parse()
                .map_err(|_| format!("\"{text}\": \"{n}\" is not a number"))?,
        ),
        Some(("s" | "S", s)) => Value::owned(s.as_bytes().to_vec()),
        _ => return Err(format!("\"{text}\" is not name=i:number or name=s:text")),
    };
    Ok((name, value))
}
