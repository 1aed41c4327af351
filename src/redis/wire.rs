//! The script's wire formats: its one packed argument, and its replies read
//! into verdicts (the header of `validate.lua` describes the same layouts).
//! Anything unexpected in a reply is `Rejection::Unavailable`: fail closed.

use crate::error::Rejection;
use crate::rules::Policy;
use redis::Value;

/// What one script call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Validate,
    Check,
    Last,
}

impl Op {
    pub(super) fn code(self) -> u8 {
        match self {
            Op::Validate => b'v',
            Op::Check => b'c',
            Op::Last => b'l',
        }
    }
}

/// A store problem as a verdict: fail closed.
pub(super) fn unavailable(why: &str) -> Rejection {
    Rejection::Unavailable { reason: why.to_owned() }
}

/// The script's one argument (its layout: the header of `validate.lua`): op,
/// policy tag, param, then the nonce, the floor and the TTL as big-endian
/// u64s, and whether the store is a cluster. The TTL is capped below 2^52 so
/// the script's doubles hold it exactly (2^52 ms is 142 000 years).
pub(super) fn script_args(op: Op, policy: Policy, nonce: u64, floor: u64, ttl: u64, cluster: bool) -> [u8; 31] {
    const TTL_CAP: u64 = (1 << 52) - 1;
    let (tag, param) = match policy {
        Policy::Strict => (b'S', 0u32),
        // both below 2^21 (`Policy::check` at build), so they fit the script's 32 bits
        Policy::HighestK(k) => (b'K', u32::try_from(k).unwrap_or(u32::MAX)),
        Policy::Window(w) => (b'W', u32::try_from(w).unwrap_or(u32::MAX)),
    };
    let mut out = [0u8; 31];
    out[30] = if cluster { b'C' } else { b'-' };
    out[0] = op.code();
    out[1] = tag;
    out[2..6].copy_from_slice(&param.to_be_bytes());
    out[6..14].copy_from_slice(&nonce.to_be_bytes());
    out[14..22].copy_from_slice(&floor.to_be_bytes());
    out[22..30].copy_from_slice(&ttl.min(TTL_CAP).to_be_bytes());
    out
}

/// The code `decode` gives a Strict refusal answered with the stored value:
/// already used when the nonce equals it, too low when below.
const STRICT_REFUSED: i64 = 5;

/// On a cluster the script answers `{reply, node id}`: the two apart. A
/// reply of another shape is `Unavailable` (fail closed).
pub(super) fn split_node(v: Value, cluster: bool) -> Result<(Value, Option<String>), Rejection> {
    if !cluster {
        return Ok((v, None));
    }
    match v {
        Value::Array(mut items) if items.len() == 2 => {
            let node = super::store::text(&items[1]).ok_or_else(|| unavailable("no node id in the reply"))?;
            let reply = items.swap_remove(0);
            if let Value::ServerError(e) = &reply {
                return Err(unavailable(&e.to_string()));
            }
            Ok((reply, Some(node)))
        }
        Value::ServerError(e) => Err(unavailable(&e.to_string())),
        other => Err(unavailable(&format!("unexpected reply {other:?}"))),
    }
}

/// The script's reply as `(code, nonce to move past)`: `0` (accepted),
/// `{code, hi, lo}`, or a Strict value (`'S'` and 8 bytes).
pub(super) fn decode(v: &Value) -> Result<(i64, u64), Rejection> {
    let items = match v {
        Value::Int(0) => return Ok((0, 0)),
        Value::BulkString(b) => {
            return match b.split_first() {
                Some((b'S', last)) => match <[u8; 8]>::try_from(last) {
                    Ok(last) => Ok((STRICT_REFUSED, u64::from_be_bytes(last))),
                    Err(_) => Err(unavailable(&format!("a stored value of {} bytes", b.len()))),
                },
                _ => Err(unavailable("unexpected bulk reply")),
            };
        }
        Value::Array(items) => items,
        other => return Err(unavailable(&format!("unexpected reply {other:?}"))),
    };
    let int = |i: usize| match items.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(unavailable(&format!("unexpected reply item {other:?}"))),
    };
    let (code, hi, lo) = (int(0)?, int(1)?, int(2)?);
    let (Ok(hi), Ok(lo)) = (u64::try_from(hi), u64::try_from(lo)) else {
        return Err(unavailable("negative halves in the reply"));
    };
    if hi > u64::from(u32::MAX) || lo > u64::from(u32::MAX) {
        return Err(unavailable("halves above 32 bits in the reply"));
    }
    Ok((code, (hi << 32) | lo))
}

/// The verdict for `nonce` from a decoded validate or check reply.
pub(super) fn verdict((code, last): (i64, u64), nonce: u64) -> Result<(), Rejection> {
    match code {
        0 => Ok(()),
        1 => Err(Rejection::AlreadyUsed { last_nonce: last, attempted_nonce: nonce }),
        2 => Err(Rejection::TooLow { last_nonce: last, attempted_nonce: nonce }),
        STRICT_REFUSED if nonce == last => Err(Rejection::AlreadyUsed { last_nonce: last, attempted_nonce: nonce }),
        STRICT_REFUSED if nonce < last => Err(Rejection::TooLow { last_nonce: last, attempted_nonce: nonce }),
        other => Err(unavailable(&format!("unexpected verdict code {other}"))),
    }
}

/// The answer to a last-nonce query: `{3, hi, lo}`, or `{4, 0, 0}` when the account is unknown.
pub(super) fn last_nonce(v: &Value) -> Result<Option<u64>, Rejection> {
    match decode(v)? {
        (3, last) => Ok(Some(last)),
        (4, _) => Ok(None),
        (code, _) => Err(unavailable(&format!("unexpected code {code} for a last-nonce query"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Strict refusal answered with the stored value.
    fn strict(n: u64) -> Value {
        Value::BulkString([&b"S"[..], &n.to_be_bytes()].concat())
    }

    fn is_unavailable(r: Result<impl std::fmt::Debug, Rejection>) -> bool {
        matches!(r, Err(Rejection::Unavailable { .. }))
    }

    #[test]
    fn the_argument_has_the_scripts_layout() {
        let a = script_args(Op::Validate, Policy::HighestK(20), 0x0102_0304_0506_0708, 9, u64::MAX, true);
        assert_eq!(&a[..6], &[b'v', b'K', 0, 0, 0, 20]);
        assert_eq!(&a[6..14], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(u64::from_be_bytes(a[14..22].try_into().unwrap()), 9);
        assert_eq!(u64::from_be_bytes(a[22..30].try_into().unwrap()), (1 << 52) - 1, "the TTL is capped");
        let strict = script_args(Op::Check, Policy::Strict, 1, 0, 0, false);
        assert_eq!((a[30], strict[0], strict[1], strict[30]), (b'C', b'c', b'S', b'-'));
    }

    #[test]
    fn a_cluster_reply_names_its_node_or_is_unavailable() {
        let id = Value::BulkString(b"abc".to_vec());
        assert_eq!(split_node(Value::Int(0), false), Ok((Value::Int(0), None)));
        assert_eq!(
            split_node(Value::Array(vec![Value::Int(0), id.clone()]), true),
            Ok((Value::Int(0), Some("abc".to_owned())))
        );
        assert!(is_unavailable(split_node(Value::Int(0), true)));
        assert!(is_unavailable(split_node(Value::Array(vec![Value::Int(0)]), true)));
        assert!(is_unavailable(split_node(Value::Array(vec![Value::Int(0), Value::Int(1)]), true)));
    }

    #[test]
    fn replies_read_as_verdicts() {
        assert_eq!(decode(&Value::Int(0)).and_then(|c| verdict(c, 7)), Ok(()));
        let table = Value::Array(vec![Value::Int(2), Value::Int(1), Value::Int(5)]);
        assert_eq!(
            decode(&table).and_then(|c| verdict(c, 3)),
            Err(Rejection::TooLow { last_nonce: (1 << 32) | 5, attempted_nonce: 3 })
        );
        assert_eq!(
            decode(&strict(9)).and_then(|c| verdict(c, 9)),
            Err(Rejection::AlreadyUsed { last_nonce: 9, attempted_nonce: 9 })
        );
        assert_eq!(
            decode(&strict(9)).and_then(|c| verdict(c, 8)),
            Err(Rejection::TooLow { last_nonce: 9, attempted_nonce: 8 })
        );
        assert_eq!(last_nonce(&Value::Array(vec![Value::Int(3), Value::Int(0), Value::Int(7)])), Ok(Some(7)));
        assert_eq!(last_nonce(&Value::Array(vec![Value::Int(4), Value::Int(0), Value::Int(0)])), Ok(None));
    }

    #[test]
    fn anything_unexpected_is_unavailable() {
        // a Strict refusal of a nonce above the stored one cannot be: never an acceptance
        assert!(is_unavailable(decode(&strict(9)).and_then(|c| verdict(c, 10))));
        for reply in [
            Value::Int(1),
            Value::Nil,
            Value::BulkString(b"S1234".to_vec()),
            Value::BulkString(b"K12345678".to_vec()),
            Value::Array(vec![Value::Int(2), Value::Int(1)]),
            Value::Array(vec![Value::Int(2), Value::Int(-1), Value::Int(0)]),
            Value::Array(vec![Value::Int(2), Value::Int(1 << 32), Value::Int(0)]),
        ] {
            assert!(is_unavailable(decode(&reply)), "{reply:?}");
        }
        let odd_code = Value::Array(vec![Value::Int(9), Value::Int(0), Value::Int(1)]);
        assert!(is_unavailable(decode(&odd_code).and_then(|c| verdict(c, 5))));
        assert!(is_unavailable(last_nonce(&Value::Int(0))), "an acceptance is no answer to a last-nonce query");
    }
}
