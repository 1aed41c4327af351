//! Base64url (RFC 4648 §5) 32 characters (24 bytes) at a time, without
//! tables, in two steps. Bits: the eight sextets of each 48-bit group are
//! moved one per byte of a `u64` (or back) with a few shifts and masks on the
//! whole word. Characters: each byte is mapped between sextet and ASCII on
//! its own by comparisons and selects, with no branch and no lookup, so the
//! loop over a chunk's 32 bytes compiles to a few vector instructions (SSE2,
//! the x86-64 baseline) rather than one step per character.

/// Characters of one chunk: three 64-bit words (192 bits) are exactly four
/// groups of 48 bits, eight characters each.
pub(crate) const CHUNK_CHARS: usize = 32;

const MASK48: u64 = (1 << 48) - 1;

/// The eight sextets of the 48-bit group `n` (its top 16 bits must be 0), one
/// per byte, the most significant in the lowest byte (the first character).
#[inline]
fn spread(n: u64) -> u64 {
    debug_assert!(n >> 48 == 0);
    // 24|24 into 32-bit lanes, 12|12 into 16-bit lanes, 6|6 into bytes.
    let u = (n >> 24) | ((n & 0xFF_FFFF) << 32);
    let t = ((u >> 12) & 0x0000_0FFF_0000_0FFF) | ((u & 0x0000_0FFF_0000_0FFF) << 16);
    ((t >> 6) & 0x003F_003F_003F_003F) | ((t & 0x003F_003F_003F_003F) << 8)
}

/// The inverse of [`spread`]: eight sextets (each byte < 64), the first in the
/// lowest byte and most significant, as one 48-bit group.
#[inline]
fn gather(s: u64) -> u64 {
    // 6|6 -> 12, 12|12 -> 24, 24|24 -> 48.
    let t = ((s & 0x003F_003F_003F_003F) << 6) | ((s >> 8) & 0x003F_003F_003F_003F);
    let u = ((t & 0x0000_0FFF_0000_0FFF) << 12) | ((t >> 16) & 0x0000_0FFF_0000_0FFF);
    ((u & 0xFF_FFFF) << 24) | (u >> 32)
}

/// The character of sextet `s` (< 64): 'A' + s, corrected at each boundary of
/// the alphabet's runs (+6 from 26 for 'a', -75 from 52 for '0', -13 at 62
/// for '-', +49 at 63 for '_'), every step wrapping (the sum is exact mod 256).
#[inline(always)]
fn to_ascii(s: u8) -> u8 {
    let step = |from: u8, by: u8| if s >= from { by } else { 0 };
    s.wrapping_add(b'A')
        .wrapping_add(step(26, 6))
        .wrapping_sub(step(52, 75))
        .wrapping_sub(step(62, 13))
        .wrapping_add(step(63, 49))
}

/// The sextet of character `c` and whether `c` is in the alphabet (else the
/// sextet is 0). The five runs are told apart by range checks, one per run;
/// at most one holds, and its offset maps the run onto its sextets.
#[inline(always)]
fn from_ascii(c: u8) -> (u8, bool) {
    let upper = c.wrapping_sub(b'A') < 26; // 'A'..='Z' -> 0..=25
    let lower = c.wrapping_sub(b'a') < 26; // 'a'..='z' -> 26..=51
    let digit = c.wrapping_sub(b'0') < 10; // '0'..='9' -> 52..=61
    let dash = c == b'-'; // 62
    let under = c == b'_'; // 63
    let pick = |is: bool, start: u8, first: u8| if is { start.wrapping_sub(first) } else { 0 };
    // the runs are disjoint: at most one term is not 0
    let offset = pick(upper, 0, b'A')
        | pick(lower, 26, b'a')
        | pick(digit, 52, b'0')
        | pick(dash, 62, b'-')
        | pick(under, 63, b'_');
    let valid = upper | lower | digit | dash | under;
    (if valid { c.wrapping_add(offset) } else { 0 }, valid)
}

/// The 32 characters of three big-endian words, read as one 192-bit number.
/// The 48-bit groups are cut out of the words with shifts (writing the words
/// as bytes and reading 6-byte groups back stalls on store forwarding); their
/// spread sextets are then mapped to characters in place, 32 bytes at once.
#[inline]
pub(crate) fn encode_chunk(w: [u64; 3]) -> [u8; CHUNK_CHARS] {
    let groups = [
        w[0] >> 16,
        ((w[0] & 0xFFFF) << 32) | (w[1] >> 32),
        ((w[1] & 0xFFFF_FFFF) << 16) | (w[2] >> 48),
        w[2] & MASK48,
    ];
    let mut out = [0u8; CHUNK_CHARS];
    for (chars, g) in out.chunks_exact_mut(8).zip(groups) {
        chars.copy_from_slice(&spread(g).to_le_bytes());
    }
    for c in &mut out {
        *c = to_ascii(*c);
    }
    out
}

/// The three words of 32 base64url characters, or `None` if any is outside the alphabet.
#[inline]
pub(crate) fn decode_chunk(chars: &[u8; CHUNK_CHARS]) -> Option<[u64; 3]> {
    let mut sextets = [0u8; CHUNK_CHARS];
    let mut invalid = 0u8;
    for (s, &c) in sextets.iter_mut().zip(chars) {
        let (v, ok) = from_ascii(c);
        *s = v;
        invalid |= u8::from(!ok);
    }
    if invalid != 0 {
        return None;
    }
    let mut g = [0u64; 4];
    for (n, s) in g.iter_mut().zip(sextets.chunks_exact(8)) {
        let mut group = [0u8; 8];
        group.copy_from_slice(s);
        *n = gather(u64::from_le_bytes(group));
    }
    Some([(g[0] << 16) | (g[1] >> 32), (g[1] << 32) | (g[2] >> 16), (g[2] << 48) | g[3]])
}

/// The base64url alphabet, sextet order: the reference the tests check the
/// arithmetic against.
#[cfg(test)]
pub(super) const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[cfg(test)]
mod tests {
    use super::*;

    /// The three words whose 192 bits are `sextets`, the first most significant.
    fn words_of(sextets: &[u8; CHUNK_CHARS]) -> [u64; 3] {
        let mut w = [0u64; 3];
        for (i, &s) in sextets.iter().enumerate() {
            for b in 0..6 {
                if s >> (5 - b) & 1 == 1 {
                    let bit = 6 * i + b; // from the top
                    w[bit / 64] |= 1 << (63 - bit % 64);
                }
            }
        }
        w
    }

    /// The 32 sextets of three words, the inverse of [`words_of`].
    fn sextets_of(w: [u64; 3]) -> [u8; CHUNK_CHARS] {
        std::array::from_fn(|i| {
            (0..6).fold(0u8, |s, b| {
                let bit = 6 * i + b;
                (s << 1) | ((w[bit / 64] >> (63 - bit % 64)) & 1) as u8
            })
        })
    }

    /// The plain encoding, one table lookup per character.
    fn reference_encode(sextets: &[u8; CHUNK_CHARS]) -> [u8; CHUNK_CHARS] {
        sextets.map(|s| ALPHABET[usize::from(s)])
    }

    #[test]
    fn every_sextet_in_every_position_encodes_as_the_table_says() {
        for pos in 0..CHUNK_CHARS {
            for s in 0..64u8 {
                // the others set to varying neighbours, so a carry or a mixed-up byte would show
                let sextets: [u8; CHUNK_CHARS] =
                    std::array::from_fn(|i| if i == pos { s } else { s.wrapping_mul(7).wrapping_add(i as u8) % 64 });
                let words = words_of(&sextets);
                assert_eq!(encode_chunk(words), reference_encode(&sextets), "sextet {s} at {pos}");
                assert_eq!(decode_chunk(&encode_chunk(words)), Some(words));
            }
        }
    }

    #[test]
    fn every_byte_in_every_position_decodes_as_the_table_says() {
        for pos in 0..CHUNK_CHARS {
            for b in 0..=255u8 {
                for filler in [b'A', b'_', b'z', b'0', b'-'] {
                    let mut chars = [filler; CHUNK_CHARS];
                    chars[pos] = b;
                    let sextets: Option<Vec<u8>> =
                        chars.iter().map(|c| ALPHABET.iter().position(|a| a == c).map(|s| s as u8)).collect();
                    let want = sextets.map(|s| words_of(&s.try_into().unwrap()));
                    assert_eq!(decode_chunk(&chars), want, "byte {b:#04x} at {pos} among {}", filler as char);
                }
            }
        }
    }

    #[test]
    fn chunks_are_the_words_read_as_one_big_endian_number() {
        let words: [u64; 3] = [0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210, 0xDEAD_BEEF_0BAD_F00D];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        // three bytes are four sextets
        let sextets: Vec<u8> = bytes
            .chunks_exact(3)
            .flat_map(|b| {
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                [18, 12, 6, 0].map(|sh| ((n >> sh) & 63) as u8)
            })
            .collect();
        let want = reference_encode(&sextets.try_into().unwrap());
        assert_eq!(encode_chunk(words), want);
        assert_eq!(decode_chunk(&encode_chunk(words)), Some(words));
        for bit in 0..192 {
            let mut w = [0u64; 3];
            w[bit / 64] = 1 << (63 - bit % 64);
            assert_eq!(decode_chunk(&encode_chunk(w)), Some(w), "bit {bit}");
        }
        let mut bad = encode_chunk(words);
        bad[31] = b'=';
        assert_eq!(decode_chunk(&bad), None);
    }

    #[test]
    fn random_chunks_round_trip() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let words = [next(), next(), next()];
            assert_eq!(words_of(&sextets_of(words)), words);
            assert_eq!(encode_chunk(words), reference_encode(&sextets_of(words)));
            assert_eq!(decode_chunk(&encode_chunk(words)), Some(words));
        }
    }
}
