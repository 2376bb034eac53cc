//! Client addresses as limits and lockouts count them.

use std::borrow::Cow;

/// The address a per-address limit counts a client by: an IPv4 address itself, an IPv6 address
/// its /64, the block a single subscriber is given and can take any address of, so that a
/// client cannot step past a per-address limit by changing its address within its own block.
/// Text that is not an IPv6 address is returned as it is.
pub fn counted(ip: &str) -> Cow<'_, str> {
    if !ip.contains(':') {
        return ip.into();
    }
    match ip.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string().into(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]).into()
            }
        },
        Err(_) => ip.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_count_whole_and_ipv6_ones_by_their_64() {
        for (ip, counted_as) in [
            ("203.0.113.7", "203.0.113.7"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:0DB8:0001:0002:0:0:0:9", "2001:db8:1:2::/64"),
            ("::1", "0:0:0:0::/64"),
            ("not an address", "not an address"),
        ] {
            assert_eq!(counted(ip), counted_as, "{ip}");
        }
    }
}
