//! The nonce as text: `prefix || base64url(counter || issued_ms || tag)`,
//! where the tag is SipHash-2-4 with a 128-bit output under the issuer's key
//! over `prefix || counter || issued_ms`. The issue time is only carried when
//! the issuer has a `max_age` (then 32 bytes, 43 characters); without one a
//! nonce is the counter and the tag (24 bytes, 32 characters). Pure functions
//! of the key and the fields, no state.

use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher;

/// Characters of an instance prefix.
pub(crate) const PREFIX_LEN: usize = 8;
/// Bytes of the longest payload: counter (8), issue time in ms (8), tag (16).
const MAX_PAYLOAD: usize = 32;
/// 6-byte groups (8 characters each) that hold the longest payload.
const GROUPS: usize = MAX_PAYLOAD.div_ceil(6);

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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
    let mut payload = [0u8; GROUPS * 6]; // zero bytes after the payload pad the last group
    payload[..8].copy_from_slice(&fields.counter.to_be_bytes());
    let tag_at = mac.payload_len() - 16;
    if mac.timed {
        payload[8..16].copy_from_slice(&fields.issued_ms.to_be_bytes());
    }
    payload[tag_at..tag_at + 16].copy_from_slice(&mac.tag(fields).to_be_bytes());
    let groups = mac.payload_len().div_ceil(6);
    let mut text = [0u8; GROUPS * 8];
    for (group, out) in payload.chunks_exact(6).zip(text.chunks_exact_mut(8)).take(groups) {
        let mut w = [0u8; 8];
        w[2..].copy_from_slice(group);
        let n = u64::from_be_bytes(w);
        for (i, c) in out.iter_mut().enumerate() {
            *c = ALPHABET[((n >> (42 - 6 * i)) & 63) as usize];
        }
    }
    let mut out = String::with_capacity(prefix.len() + mac.encoded_len());
    out.push_str(prefix);
    // Characters past `encoded_len` only encode padding. Every byte comes from
    // ALPHABET (ASCII), so this is always Ok.
    if let Ok(body) = std::str::from_utf8(&text[..mac.encoded_len()]) {
        out.push_str(body);
    }
    out
}

/// The sextet of each base64url character; 0xFF for every other byte.
const SEXTET: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

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
    let mut chars = [b'A'; GROUPS * 8]; // 'A' is sextet 0: the padding the encoder dropped
    chars[..encoded].copy_from_slice(body);
    let len = mac.payload_len();
    let mut payload = [0u8; GROUPS * 6];
    let mut bad = 0u8; // the OR of every sextet: 0xFF marks a byte outside the alphabet
    for (group, out) in chars.chunks_exact(8).zip(payload.chunks_exact_mut(6)).take(len.div_ceil(6)) {
        let mut n = 0u64;
        for &c in group {
            let s = SEXTET[c as usize];
            bad |= s;
            n = (n << 6) | u64::from(s & 63);
        }
        out.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    // a last character that carries padding bits: a canonical nonce has them 0
    if bad & 0x80 != 0 || payload[len..].iter().any(|&b| b != 0) {
        return Err(Unreadable::Malformed);
    }
    if head != prefix.as_bytes() {
        return Err(Unreadable::WrongPrefix);
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&payload[at..at + 8]);
        u64::from_be_bytes(w)
    };
    let fields = Fields { counter: word(0), issued_ms: if mac.timed { word(8) } else { 0 } };
    let mut t = [0u8; 16];
    t.copy_from_slice(&payload[len - 16..len]);
    // one comparison of the whole 128 bits (no early exit on a first differing byte)
    if mac.tag(fields) ^ u128::from_be_bytes(t) != 0 {
        return Err(Unreadable::Forged);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

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
