//! The system resolver behind [`Resolver`](crate::modules::core::dns::Resolver):
//! `getaddrinfo(3)` through the standard library, so `/etc/hosts`, DNS and
//! whatever `nsswitch.conf` names answer, as they do for every other program
//! on the machine.

use std::io;
use std::net::{IpAddr, ToSocketAddrs};

use crate::modules::core::dns::Lookup;

/// `getaddrinfo` for A and AAAA records.
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        Ok((name, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_resolves_to_a_loopback_address() {
        // Every Linux machine names localhost (nss-files or nss-myhostname).
        let found = SystemLookup.lookup("localhost").unwrap();
        assert!(
            !found.is_empty() && found.iter().all(|a| a.is_loopback()),
            "{found:?}"
        );
    }
}
