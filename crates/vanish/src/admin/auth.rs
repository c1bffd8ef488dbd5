//! Admin authentication: bearer tokens compared in constant time, or an allow-list of
//! networks. Owns the decision only; the router applies it before anything else runs.

use std::net::IpAddr;

use ipnet::IpNet;
use subtle::ConstantTimeEq;

/// Who may call the admin API.
#[derive(Debug, Clone)]
pub struct Auth {
    tokens: Vec<Vec<u8>>,
    allow: Vec<IpNet>,
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead: the source address is in the allow-list (no token needed).
    AllowedByAddress,
    /// Go ahead: a valid token.
    AllowedByToken,
    /// No or wrong token (answered 401).
    BadToken,
    /// Source address not allowed and no token configured (answered 403).
    Forbidden,
}

impl Auth {
    /// Tokens and allowed networks.
    pub fn new(tokens: &[String], allow: &[IpNet]) -> Self {
        Auth {
            tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
            allow: allow.to_vec(),
        }
    }

    /// Checks a request's source and `Authorization` header.
    pub fn check(&self, source: IpAddr, authorization: Option<&[u8]>) -> Decision {
        if vanish_engine::forwarding::peer_in(&self.allow, source) {
            return Decision::AllowedByAddress;
        }
        self.check_token(authorization)
    }

    /// Checks the `Authorization` header alone, for a request whose source address says
    /// nothing about its sender (relayed by a proxy): the allow-list does not apply.
    pub fn check_token(&self, authorization: Option<&[u8]>) -> Decision {
        if self.tokens.is_empty() {
            return Decision::Forbidden;
        }
        let Some(given) = authorization.and_then(|a| a.strip_prefix(b"Bearer ")) else {
            return Decision::BadToken;
        };
        // Compare against every token without stopping early.
        let mut ok = subtle::Choice::from(0u8);
        for t in &self.tokens {
            ok |= t.as_slice().ct_eq(given);
        }
        if bool::from(ok) {
            Decision::AllowedByToken
        } else {
            Decision::BadToken
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let loopback: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let open = Auth::new(&[], &loopback);
        assert_eq!(
            open.check("127.0.0.1".parse().unwrap(), None),
            Decision::AllowedByAddress
        );
        assert_eq!(
            open.check("::ffff:127.0.0.1".parse().unwrap(), None),
            Decision::AllowedByAddress
        );
        assert_eq!(
            open.check("10.0.0.1".parse().unwrap(), None),
            Decision::Forbidden
        );
        let tok = Auth::new(&["s3cret-token".into()], &[]);
        let ip = "127.0.0.1".parse().unwrap();
        assert_eq!(tok.check(ip, None), Decision::BadToken);
        assert_eq!(tok.check(ip, Some(b"Bearer nope")), Decision::BadToken);
        assert_eq!(tok.check(ip, Some(b"s3cret-token")), Decision::BadToken);
        assert_eq!(
            tok.check(ip, Some(b"Bearer s3cret-token")),
            Decision::AllowedByToken
        );
        // Without the address, the allow-list lets nobody in.
        assert_eq!(open.check_token(None), Decision::Forbidden);
        let both = Auth::new(&["s3cret-token".into()], &loopback);
        assert_eq!(both.check_token(None), Decision::BadToken);
        assert_eq!(
            both.check_token(Some(b"Bearer s3cret-token")),
            Decision::AllowedByToken
        );
    }
}
