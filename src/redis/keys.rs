//! The names of a prefix's keys, each built in one place: an account's key
//! `{prefix:account}` (a hash tag, so one key, one slot, on any cluster) and
//! the prefix's record `{prefix}:meta` (see `meta.rs`). No account key can be
//! spelled like the record: the record has `}` right after the prefix, an
//! account key has `:`.

use super::MAX_ACCOUNT_LEN;
use crate::error::Rejection;

/// `{prefix:account}`; an account above [`MAX_ACCOUNT_LEN`] bytes is refused.
pub(super) fn account(prefix: &str, account: &[u8]) -> Result<Vec<u8>, Rejection> {
    if account.len() > MAX_ACCOUNT_LEN {
        return Err(Rejection::AccountTooLong { len: account.len(), max: MAX_ACCOUNT_LEN });
    }
    let mut key = Vec::with_capacity(prefix.len() + account.len() + 3);
    key.push(b'{');
    key.extend_from_slice(prefix.as_bytes());
    key.push(b':');
    key.extend_from_slice(account);
    key.push(b'}');
    Ok(key)
}

/// `{prefix}:meta`.
pub(super) fn meta(prefix: &str) -> Vec<u8> {
    format!("{{{prefix}}}:meta").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_key_is_never_the_record() {
        assert_eq!(account("nonce", b"a").unwrap(), b"{nonce:a}".to_vec());
        assert_eq!(meta("nonce"), b"{nonce}:meta".to_vec());
        for odd in [&b""[..], b"}:meta", b"}", b"{x}"] {
            assert_ne!(account("nonce", odd).unwrap(), meta("nonce"));
        }
        assert!(account("nonce", &[0; MAX_ACCOUNT_LEN + 1]).is_err());
    }
}
