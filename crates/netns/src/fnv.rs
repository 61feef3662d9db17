//! FNV-1a, as Go's `hash/fnv` computes it (`New32a`, `New64a`): the one stable hash of the
//! workspace, for names and checksums that must come out the same in every build and on every
//! platform (std's hasher makes no such promise). It serves the hashed parts of link names and
//! nftables comments, and bolt's meta-page checksum.

/// FNV-1a, 32 bits (Go's `fnv.New32a`).
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// FNV-1a, 64 bits (Go's `fnv.New64a`).
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go: `fnv.New32a()` / `fnv.New64a()` over "", "a" and "foobar".
    #[test]
    fn matches_go() {
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
