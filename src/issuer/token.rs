//! The nonce as text: `prefix || base64url(counter || issued_ms || tag)`,
//! where the tag is SipHash-2-4 with a 128-bit output under the issuer's key
//! over `prefix || counter || issued_ms`. Pure functions, no state.

use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher;

/// Bytes of the payload: counter (8), issue time in ms (8), tag (16).
pub(crate) const PAYLOAD: usize = 32;
/// Characters of the encoded payload: 32 bytes in unpadded base64url.
pub(crate) const ENCODED: usize = 43;
/// Characters of an instance prefix.
pub(crate) const PREFIX_LEN: usize = 8;

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

fn tag(key: &[u8; 16], prefix: &[u8], fields: Fields) -> [u8; 16] {
    // one write of the whole message: the prefix (8 bytes or none) and the two fields
    let mut msg = [0u8; PREFIX_LEN + 16];
    let p = prefix.len().min(PREFIX_LEN);
    msg[..p].copy_from_slice(&prefix[..p]);
    msg[p..p + 8].copy_from_slice(&fields.counter.to_be_bytes());
    msg[p + 8..p + 16].copy_from_slice(&fields.issued_ms.to_be_bytes());
    let mut h = SipHasher24::new_with_key(key);
    h.write(&msg[..p + 16]);
    h.finish128().as_bytes()
}

/// The nonce for `fields` under `key`, behind `prefix`.
pub(crate) fn encode(key: &[u8; 16], prefix: &str, fields: Fields) -> String {
    let mut payload = [0u8; PAYLOAD + 1]; // one zero byte of padding for the last group
    payload[..8].copy_from_slice(&fields.counter.to_be_bytes());
    payload[8..16].copy_from_slice(&fields.issued_ms.to_be_bytes());
    payload[16..PAYLOAD].copy_from_slice(&tag(key, prefix.as_bytes(), fields));
    let mut text = [0u8; 44];
    for (group, out) in payload.chunks_exact(3).zip(text.chunks_exact_mut(4)) {
        let n = (u32::from(group[0]) << 16) | (u32::from(group[1]) << 8) | u32::from(group[2]);
        for (i, c) in out.iter_mut().enumerate() {
            *c = ALPHABET[((n >> (18 - 6 * i)) & 63) as usize];
        }
    }
    let mut out = Vec::with_capacity(prefix.len() + ENCODED);
    out.extend_from_slice(prefix.as_bytes());
    // 32 bytes are 43 characters: the 44th only encodes the padding byte
    out.extend_from_slice(&text[..ENCODED]);
    // ASCII by construction (the prefix was checked at build), so this is always Ok
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
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

/// The fields of `text`, if it is a nonce issued under `key` behind `prefix`.
pub(crate) fn decode(key: &[u8; 16], prefix: &str, text: &str) -> Result<Fields, Unreadable> {
    let bytes = text.as_bytes();
    if bytes.len() != prefix.len() + ENCODED {
        return Err(Unreadable::Malformed);
    }
    let (head, body) = bytes.split_at(prefix.len());
    if !head.iter().all(|&c| url_safe(c)) {
        return Err(Unreadable::Malformed);
    }
    let mut sextets = [0u8; 44]; // the 44th stays 0: the padding the encoder dropped
    for (s, &c) in sextets.iter_mut().zip(body) {
        *s = SEXTET[c as usize];
        if *s == 0xFF {
            return Err(Unreadable::Malformed);
        }
    }
    let mut payload = [0u8; PAYLOAD + 1];
    for (group, out) in sextets.chunks_exact(4).zip(payload.chunks_exact_mut(3)) {
        let n = group.iter().fold(0u32, |n, &s| (n << 6) | u32::from(s));
        out.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    // the last character carries 4 bits of data and 2 of padding: a canonical nonce has them 0
    if payload[PAYLOAD] != 0 {
        return Err(Unreadable::Malformed);
    }
    if head != prefix.as_bytes() {
        return Err(Unreadable::WrongPrefix);
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&payload[..8]);
    let counter = u64::from_be_bytes(w);
    w.copy_from_slice(&payload[8..16]);
    let fields = Fields { counter, issued_ms: u64::from_be_bytes(w) };
    // compare every byte (no early exit): the time it takes says nothing about the tag
    let expected = tag(key, head, fields);
    let diff = expected.iter().zip(&payload[16..PAYLOAD]).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
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
        for (prefix, counter, issued_ms) in
            [("", 1, 0), ("abcd-_XY", u64::MAX, u64::MAX), ("", 1 << 40, 1_704_067_200_000)]
        {
            let f = Fields { counter, issued_ms };
            let text = encode(&KEY, prefix, f);
            assert_eq!(text.len(), prefix.len() + ENCODED);
            assert!(text.bytes().all(url_safe), "{text}");
            assert_eq!(decode(&KEY, prefix, &text), Ok(f));
        }
    }

    #[test]
    fn every_single_character_change_is_refused() {
        let text = encode(&KEY, "", Fields { counter: 7, issued_ms: 9 });
        for i in 0..text.len() {
            for c in ALPHABET.iter().copied() {
                let mut b = text.clone().into_bytes();
                if b[i] == c {
                    continue;
                }
                b[i] = c;
                let t = String::from_utf8(b).unwrap();
                assert!(decode(&KEY, "", &t).is_err(), "changed at {i} to {} and accepted", c as char);
            }
        }
        assert_eq!(decode(b"another key 16by", "", &text), Err(Unreadable::Forged));
    }
}
