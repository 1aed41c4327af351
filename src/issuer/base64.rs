//! Base64url (RFC 4648 §5) eight characters at a time, without tables: the
//! eight sextets of a 48-bit group sit one per byte of a `u64`, and every
//! per-character step (range checks, the shift to or from ASCII) is one
//! arithmetic operation on all eight bytes at once. No step carries from one
//! byte into the next: each sum is proved to stay below 256 where it is made.

/// `b` in every byte.
const fn bytes(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

const LOW7: u64 = bytes(0x7F);
const HIGH: u64 = bytes(0x80);
const ONES: u64 = bytes(0x01);

/// 0x80 in each byte of `x` (each byte < 0x80) that is `>= t` (1 <= t <= 0x80):
/// `x + (0x80 - t)` is at most 0xFF, so it never carries into the next byte.
#[inline]
const fn at_least(x: u64, t: u8) -> u64 {
    (x + bytes(0x80 - t)) & HIGH
}

/// 1 in each byte of `x` (each byte < 0x80) in `lo..=hi`, else 0.
#[inline]
const fn within(x: u64, lo: u8, hi: u8) -> u64 {
    ((at_least(x, lo) & !at_least(x, hi + 1)) >> 7) & ONES
}

/// The eight characters of the 48-bit group `n` (its top 16 bits must be 0),
/// most significant sextet first.
#[inline]
pub(crate) fn encode_group(n: u64) -> [u8; 8] {
    debug_assert!(n >> 48 == 0);
    // Spread the sextets one per byte, the first in the lowest byte (it is
    // written first): 24|24 into 32-bit lanes, 12|12 into 16-bit lanes, 6|6.
    let u = (n >> 24) | ((n & 0xFF_FFFF) << 32);
    let t = ((u >> 12) & 0x0000_0FFF_0000_0FFF) | ((u & 0x0000_0FFF_0000_0FFF) << 16);
    let s = ((t >> 6) & 0x003F_003F_003F_003F) | ((t & 0x003F_003F_003F_003F) << 8);
    // Sextet -> ASCII: 'A' + s, then each threshold adds its correction. Per
    // byte the running value stays in 45..=134 (0..=63 + 65, +6 at 26, -75 at
    // 52, -13 at 62, +49 at 63), so no add carries and no subtract borrows.
    let ge = |t: u8| (at_least(s, t) >> 7) & ONES;
    let ascii = s + bytes(b'A') + ge(26) * 6 - ge(52) * 75 - ge(62) * 13 + ge(63) * 49;
    ascii.to_le_bytes()
}

/// The 48-bit group of eight base64url characters (first character most
/// significant), or `None` if any byte is outside the alphabet.
#[inline]
pub(crate) fn decode_group(chars: [u8; 8]) -> Option<u64> {
    let v = u64::from_le_bytes(chars);
    let x = v & LOW7; // the checks below need bytes < 0x80; a byte >= 0x80 fails `ascii`
    let ascii = v & HIGH == 0;
    let upper = within(x, b'A', b'Z');
    let lower = within(x, b'a', b'z');
    let digit = within(x, b'0', b'9');
    let dash = within(x, b'-', b'-');
    let under = within(x, b'_', b'_');
    if !ascii || upper | lower | digit | dash | under != ONES {
        return None;
    }
    // Every byte is in exactly one class, and each correction maps it into
    // 0..=63 without crossing 0 or 0x100: 'A'..'Z' - 65, 'a'..'z' - 71,
    // '0'..'9' + 4, '-' + 17, '_' - 32.
    let s = x - upper * 65 - lower * 71 + digit * 4 + dash * 17 - under * 32;
    // Gather the sextets, first (lowest byte) most significant: 6|6 -> 12, 12|12 -> 24, 24|24 -> 48.
    let t = ((s & 0x003F_003F_003F_003F) << 6) | ((s >> 8) & 0x003F_003F_003F_003F);
    let u = ((t & 0x0000_0FFF_0000_0FFF) << 12) | ((t >> 16) & 0x0000_0FFF_0000_0FFF);
    Some(((u & 0xFF_FFFF) << 24) | (u >> 32))
}

/// Characters of one chunk: three 64-bit words (192 bits) are exactly four groups.
pub(crate) const CHUNK_CHARS: usize = 32;

/// The 32 characters of three big-endian words, read as one 192-bit number.
/// The groups are cut out with shifts: no byte buffer in between (writing
/// the words as bytes and reading 6-byte groups back stalls on store forwarding).
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
        chars.copy_from_slice(&encode_group(g));
    }
    out
}

/// The three words of 32 base64url characters, or `None` if any is outside the alphabet.
#[inline]
pub(crate) fn decode_chunk(chars: &[u8; CHUNK_CHARS]) -> Option<[u64; 3]> {
    let mut g = [0u64; 4];
    for (n, c) in g.iter_mut().zip(chars.chunks_exact(8)) {
        let mut group = [0u8; 8];
        group.copy_from_slice(c);
        *n = decode_group(group)?;
    }
    Some([(g[0] << 16) | (g[1] >> 32), (g[1] << 32) | (g[2] >> 16), (g[2] << 48) | g[3]])
}

const MASK48: u64 = (1 << 48) - 1;

/// The base64url alphabet, sextet order: the reference the tests check the
/// arithmetic against.
#[cfg(test)]
pub(super) const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain encoding, one table lookup per character.
    fn reference_encode(n: u64) -> [u8; 8] {
        std::array::from_fn(|i| ALPHABET[((n >> (42 - 6 * i)) & 63) as usize])
    }

    #[test]
    fn every_sextet_in_every_position_encodes_as_the_table_says() {
        for pos in 0..8 {
            for s in 0..64u64 {
                // the others set to a varying neighbour, so a carry would show
                let n = (0..8).fold(0u64, |acc, i| (acc << 6) | if i == pos { s } else { (s * 7 + i) % 64 });
                assert_eq!(encode_group(n), reference_encode(n), "sextet {s} at {pos}");
                assert_eq!(decode_group(encode_group(n)), Some(n));
            }
        }
    }

    #[test]
    fn every_byte_in_every_position_decodes_as_the_table_says() {
        for pos in 0..8 {
            for b in 0..=255u8 {
                for filler in [b'A', b'_', b'z', b'0', b'-'] {
                    let mut chars = [filler; 8];
                    chars[pos] = b;
                    let want = chars
                        .iter()
                        .try_fold(0u64, |acc, c| ALPHABET.iter().position(|a| a == c).map(|s| (acc << 6) | s as u64));
                    assert_eq!(decode_group(chars), want, "byte {b:#04x} at {pos} among {}", filler as char);
                }
            }
        }
    }

    #[test]
    fn chunks_are_the_words_read_as_one_big_endian_number() {
        let words: [u64; 3] = [0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210, 0xDEAD_BEEF_0BAD_F00D];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let want: Vec<u8> = bytes
            .chunks_exact(6)
            .flat_map(|g| reference_encode(g.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))))
            .collect();
        assert_eq!(encode_chunk(words).to_vec(), want);
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
    fn random_groups_round_trip() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x >> 16;
            assert_eq!(encode_group(n), reference_encode(n));
            assert_eq!(decode_group(encode_group(n)), Some(n));
        }
    }
}
