//! `ringsip user …` and `ringsip address …`: the subscriber and address
//! tables, edited directly in the database (as kamctl does). A running server
//! sees subscriber changes within a second and address changes on reload.

use std::process::ExitCode;

use ringsip::modules::auth::digest::{ha1, Algorithm};
use ringsip::store::{self, AddressRow, Store, SubscriberColumns, SubscriberRow};

use crate::cli::{AddressCommand, UserCommand};

fn open(url: &str) -> Result<Box<dyn Store>, String> {
    store::open(url).map_err(|e| e.to_string())
}

fn split_user(user: &str) -> Result<(&str, &str), String> {
    match user.split_once('@') {
        Some((u, d)) if !u.is_empty() && !d.is_empty() => Ok((u, d)),
        _ => Err(format!("{user:?}: give the subscriber as USER@DOMAIN")),
    }
}

/// The row kamctl writes: the password, `ha1` = MD5(user:domain:password) and
/// `ha1b` = MD5(user@domain:domain:password).
pub fn subscriber_row(user: &str, domain: &str, password: &str) -> SubscriberRow {
    let full = format!("{user}@{domain}");
    SubscriberRow {
        username: user.into(),
        domain: domain.into(),
        password: password.into(),
        ha1: ha1(
            Algorithm::Md5,
            user.as_bytes(),
            domain.as_bytes(),
            password.as_bytes(),
        ),
        ha1b: ha1(
            Algorithm::Md5,
            full.as_bytes(),
            domain.as_bytes(),
            password.as_bytes(),
        ),
    }
}

fn finish(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

pub fn user(cmd: UserCommand) -> ExitCode {
    finish(user_inner(cmd))
}

fn user_inner(cmd: UserCommand) -> Result<(), String> {
    let err = |e: store::StoreError| e.to_string();
    match cmd {
        UserCommand::Add { user, password, db } | UserCommand::Passwd { user, password, db } => {
            let (u, d) = split_user(&user)?;
            open(&db.db)?
                .subscriber_put(&subscriber_row(u, d, &password))
                .map_err(err)
        }
        UserCommand::Rm { user, db } => {
            let (u, d) = split_user(&user)?;
            if open(&db.db)?.subscriber_delete(u, d).map_err(err)? {
                Ok(())
            } else {
                Err(format!("{user}: no such subscriber"))
            }
        }
        UserCommand::List { db } => {
            let cols = SubscriberColumns {
                password: "password".into(),
                ..SubscriberColumns::default()
            };
            for r in open(&db.db)?.subscribers(&cols).map_err(err)? {
                println!("{}@{}", r.username, r.domain);
            }
            Ok(())
        }
    }
}

pub fn address(cmd: AddressCommand) -> ExitCode {
    finish(address_inner(cmd))
}

/// `IP/MASK` or `IP` (mask 32, or 128 for IPv6; names keep 32).
fn split_mask(addr: &str) -> Result<(String, Option<i64>), String> {
    match addr.split_once('/') {
        Some((ip, m)) => {
            let m: i64 = m.parse().map_err(|_| format!("{addr:?}: bad mask"))?;
            Ok((ip.to_string(), Some(m)))
        }
        None => Ok((addr.to_string(), None)),
    }
}

fn address_inner(cmd: AddressCommand) -> Result<(), String> {
    let err = |e: store::StoreError| e.to_string();
    match cmd {
        AddressCommand::Add {
            group,
            addr,
            port,
            tag,
            db,
        } => {
            let (ip, mask) = split_mask(&addr)?;
            let default_mask = if ip.contains(':') { 128 } else { 32 };
            let row = AddressRow {
                grp: group,
                ip_addr: ip,
                mask: mask.unwrap_or(default_mask),
                port: i64::from(port),
                tag,
            };
            open(&db.db)?.address_add("address", &row).map_err(err)
        }
        AddressCommand::Rm {
            group,
            addr,
            port,
            db,
        } => {
            let (ip, mask) = split_mask(&addr)?;
            let n = open(&db.db)?
                .address_delete("address", group, &ip, mask, port.map(i64::from))
                .map_err(err)?;
            if n == 0 {
                return Err(format!("group {group} has no address {addr}"));
            }
            Ok(())
        }
        AddressCommand::List { db } => {
            for r in open(&db.db)?.addresses("address").map_err(err)? {
                println!(
                    "{} {}/{} {} {}",
                    r.grp,
                    r.ip_addr,
                    r.mask,
                    r.port,
                    r.tag.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}
