//! The nonce as text: `prefix || base64url(counter || issued_ms || tag)`,
//! where the tag is SipHash-2-4 with a 128-bit output under the issuer's key
//! over `prefix || counter || issued_ms`. The issue time is only carried when
//! the issuer has a `max_age` (then 32 bytes, 43 characters); without one a
//! nonce is the counter and the tag (24 bytes, 32 characters). Pure functions
//! of the key and the fields, no state.

use super::base64::{self, CHUNK_CHARS};
use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher;

/// Characters of an instance prefix.
pub(crate) const PREFIX_LEN: usize = 8;
/// Bytes of the longest payload: counter (8), issue time in ms (8), tag (16).
const MAX_PAYLOAD: usize = 32;

/// What a nonce carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) counter: u64,
    pub(crate) issued_ms: u64,
}

/// Whether `c` may appear in a prefix (the base64url alphabet).
pub(crate) fn url_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// The MAC under one issuer's key, with that issuer's prefix already absorbed
/// (the prefix is one whole SipHash block, so each tag only hashes the fields),
/// and the issuer's layout.
#[derive(Clone, Copy)]
pub(crate) struct Mac {
    keyed: SipHasher24,
    /// Whether nonces carry their issue time.
    timed: bool,
}

impl Mac {
    pub(crate) fn new(key: &[u8; 16], prefix: &str, timed: bool) -> Self {
        let mut keyed = SipHasher24::new_with_key(key);
        keyed.write(prefix.as_bytes());
        Mac { keyed, timed }
    }

    /// Bytes of the payload: counter, issue time if timed, tag.
    fn payload_len(&self) -> usize {
        if self.timed {
            MAX_PAYLOAD
        } else {
            MAX_PAYLOAD - 8
        }
    }

    /// Characters of the encoded payload (unpadded base64url).
    pub(crate) fn encoded_len(&self) -> usize {
        (self.payload_len() * 8).div_ceil(6)
    }

    /// The tag over `prefix || counter [|| issued_ms]` (each field one
    /// little-endian 8-byte block: `write_u64` takes the hasher's short path).
    fn tag(&self, fields: Fields) -> u128 {
        let mut h = self.keyed;
        h.write_u64(fields.counter);
        if self.timed {
            h.write_u64(fields.issued_ms);
        }
        h.finish128().as_u128()
    }
}

/// The nonce for `fields` under `mac`, behind `prefix` (the one `mac` absorbed).
pub(crate) fn encode(mac: &Mac, prefix: &str, fields: Fields) -> String {
    let tag = mac.tag(fields);
    let (hi, lo) = ((tag >> 64) as u64, tag as u64);
    let mut text = [0u8; 2 * CHUNK_CHARS];
    if mac.timed {
        // 256 bits: a second chunk holds the tag's low word, then zero bits
        text[..CHUNK_CHARS].copy_from_slice(&base64::encode_chunk([fields.counter, fields.issued_ms, hi]));
        text[CHUNK_CHARS..].copy_from_slice(&base64::encode_chunk([lo, 0, 0]));
    } else {
        text[..CHUNK_CHARS].copy_from_slice(&base64::encode_chunk([fields.counter, hi, lo]));
    }
    let mut out = String::with_capacity(prefix.len() + mac.encoded_len());
    out.push_str(prefix);
    // Characters past `encoded_len` only encode zero bits. Every byte is a
    // base64url character (ASCII), so this is always Ok.
    if let Ok(body) = std::str::from_utf8(&text[..mac.encoded_len()]) {
        out.push_str(body);
    }
    out
}

/// Whether `head` is `prefix` (the two are as long: 0 or [`PREFIX_LEN`] bytes),
/// compared as one 8-byte word. Not slice `==`: that calls `memcmp`, which on
/// the empty prefix (a dangling pointer) may take a masked load's slow
/// fault-suppression assist.
fn same_prefix(head: &[u8], prefix: &[u8]) -> bool {
    match (head.first_chunk::<PREFIX_LEN>(), prefix.first_chunk::<PREFIX_LEN>()) {
        (Some(h), Some(p)) => h == p,
        _ => head.is_empty() && prefix.is_empty(),
    }
}

/// Why a text is not a nonce of this issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Wrong length or alphabet, or bits a canonical encoding never has.
    Malformed,
    /// Well formed, behind another instance's prefix.
    WrongPrefix,
    /// Well formed, but the tag does not verify under this key.
    Forged,
}

/// The fields of `text`, if it is a nonce issued under `mac` behind `prefix`
/// (`issued_ms` is 0 when `mac` is not timed).
pub(crate) fn decode(mac: &Mac, prefix: &str, text: &str) -> Result<Fields, Unreadable> {
    let bytes = text.as_bytes();
    let encoded = mac.encoded_len();
    if bytes.len() != prefix.len() + encoded {
        return Err(Unreadable::Malformed);
    }
    let (head, body) = bytes.split_at(prefix.len());
    if !head.iter().all(|&c| url_safe(c)) {
        return Err(Unreadable::Malformed);
    }
    // the body is `encoded` (32 or 43) characters, checked above; split without indexing all the same
    let (first, tail) = body.split_first_chunk::<CHUNK_CHARS>().ok_or(Unreadable::Malformed)?;
    let [counter, w1, w2] = base64::decode_chunk(first).ok_or(Unreadable::Malformed)?;
    let (fields, tag) = if mac.timed {
        let mut rest = [b'A'; CHUNK_CHARS]; // 'A' is sextet 0: the zero bits the encoder dropped
        rest.get_mut(..tail.len()).ok_or(Unreadable::Malformed)?.copy_from_slice(tail);
        let [lo, pad1, pad2] = base64::decode_chunk(&rest).ok_or(Unreadable::Malformed)?;
        // a last character that carries bits past the tag: a canonical nonce has them 0
        if pad1 | pad2 != 0 {
            return Err(Unreadable::Malformed);
        }
        (Fields { counter, issued_ms: w1 }, (u128::from(w2) << 64) | u128::from(lo))
    } else {
        (Fields { counter, issued_ms: 0 }, (u128::from(w1) << 64) | u128::from(w2))
    };
    if !same_prefix(head, prefix.as_bytes()) {
        return Err(Unreadable::WrongPrefix);
    }
    // one comparison of the whole 128 bits (no early exit on a first differing byte)
    if mac.tag(fields) ^ tag != 0 {
        return Err(Unreadable::Forged);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::base64::ALPHABET;

    const KEY: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn encode_then_decode_round_trips_and_is_url_safe() {
        for (prefix, counter, issued_ms, timed) in [
            ("", 1, 0, false),
            ("", 1, 0, true),
            ("abcd-_XY", u64::MAX, u64::MAX, true),
            ("abcd-_XY", u64::MAX, 0, false),
            ("", 1 << 40, 1_704_067_200_000, true),
        ] {
            let f = Fields { counter, issued_ms };
            let mac = Mac::new(&KEY, prefix, timed);
            let text = encode(&mac, prefix, f);
            assert_eq!(text.len(), prefix.len() + if timed { 43 } else { 32 });
            assert!(text.bytes().all(url_safe), "{text}");
            assert_eq!(decode(&mac, prefix, &text), Ok(f));
        }
    }

    #[test]
    fn every_single_character_change_is_refused() {
        for timed in [false, true] {
            let mac = Mac::new(&KEY, "", timed);
            let text = encode(&mac, "", Fields { counter: 7, issued_ms: if timed { 9 } else { 0 } });
            every_change_is_refused(&mac, &text);
            assert_eq!(decode(&Mac::new(b"another key 16by", "", timed), "", &text), Err(Unreadable::Forged));
            // the other layout's length
            assert_eq!(decode(&Mac::new(&KEY, "", !timed), "", &text), Err(Unreadable::Malformed));
        }
    }

    fn every_change_is_refused(mac: &Mac, text: &str) {
        for i in 0..text.len() {
            for c in ALPHABET.iter().copied() {
                let mut b = text.as_bytes().to_vec();
                if b[i] == c {
                    continue;
                }
                b[i] = c;
                let t = String::from_utf8(b).unwrap();
                assert!(decode(mac, "", &t).is_err(), "changed at {i} to {} and accepted", c as char);
            }
        }
    }
}
