//! bolt's on-disk format (version 2, little-endian): page headers, meta pages, leaf and branch
//! elements, bucket headers, the freelist. Every read is bounds-checked and returns `None` (or
//! a reason) instead of panicking.
//!
//! ```text
//! page header (16 B): id u64 | flags u16 | count u16 | overflow u32
//! meta (64 B at +16): magic u32 | version u32 | pageSize u32 | flags u32 |
//!                     root bucket {root pgid u64, sequence u64} | freelist pgid u64 |
//!                     high-water pgid u64 | txid u64 | checksum u64 (FNV-1a 64 of the 56 B before)
//! leaf element (16 B): flags u32 | pos u32 | ksize u32 | vsize u32   (pos from the element)
//! branch element (16 B): pos u32 | ksize u32 | child pgid u64          (pos from the element)
//! bucket value: {root pgid u64, sequence u64}, then, when root == 0, an inline leaf page
//! freelist: sorted pgids after the header; count 0xFFFF = the real count is the first u64
//! ```

/// bolt's magic number.
pub(crate) const MAGIC: u32 = 0xED0C_DAED;
/// The only format version bolt has written since 2014.
pub(crate) const VERSION: u32 = 2;
/// Page header size.
pub(crate) const HEADER: usize = 16;
/// Leaf and branch element size.
pub(crate) const ELEM: usize = 16;
/// Bucket header size.
pub(crate) const BUCKET_HEADER: usize = 16;
/// Size of the meta structure.
pub(crate) const META_LEN: usize = 64;
/// Offset of the checksum inside the meta structure.
const CHECKSUM_AT: usize = 56;

/// Page flags.
pub(crate) const BRANCH: u16 = 0x01;
pub(crate) const LEAF: u16 = 0x02;
pub(crate) const META: u16 = 0x04;
pub(crate) const FREELIST: u16 = 0x10;

/// Leaf element flag of a nested bucket.
pub(crate) const BUCKET_LEAF: u32 = 0x01;

/// The freelist pgid of a database that does not persist its freelist.
pub(crate) const NO_FREELIST: u64 = u64::MAX;

/// Freelist `count` meaning "the count is the first u64".
pub(crate) const COUNT_OVERFLOW: u16 = 0xFFFF;

pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) id: u64,
    pub(crate) flags: u16,
    pub(crate) count: u16,
    pub(crate) overflow: u32,
}

impl Header {
    pub(crate) fn parse(b: &[u8]) -> Option<Header> {
        Some(Header {
            id: u64_at(b, 0)?,
            flags: u16_at(b, 8)?,
            count: u16_at(b, 10)?,
            overflow: u32_at(b, 12)?,
        })
    }

    pub(crate) fn write(&self, b: &mut [u8]) {
        if let Some(h) = b.get_mut(..HEADER) {
            h[0..8].copy_from_slice(&self.id.to_le_bytes());
            h[8..10].copy_from_slice(&self.flags.to_le_bytes());
            h[10..12].copy_from_slice(&self.count.to_le_bytes());
            h[12..16].copy_from_slice(&self.overflow.to_le_bytes());
        }
    }
}

/// A meta page's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) magic: u32,
    pub(crate) version: u32,
    pub(crate) page_size: u32,
    pub(crate) flags: u32,
    pub(crate) root: u64,
    pub(crate) root_sequence: u64,
    pub(crate) freelist: u64,
    pub(crate) pgid: u64,
    pub(crate) txid: u64,
    pub(crate) checksum: u64,
}

/// Why a meta page is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaFault {
    Magic,
    Version,
    Checksum,
}

impl Meta {
    /// Parses the 64 bytes of a meta structure.
    pub(crate) fn parse(b: &[u8]) -> Option<Meta> {
        Some(Meta {
            magic: u32_at(b, 0)?,
            version: u32_at(b, 4)?,
            page_size: u32_at(b, 8)?,
            flags: u32_at(b, 12)?,
            root: u64_at(b, 16)?,
            root_sequence: u64_at(b, 24)?,
            freelist: u64_at(b, 32)?,
            pgid: u64_at(b, 40)?,
            txid: u64_at(b, 48)?,
            checksum: u64_at(b, 56)?,
        })
    }

    /// The 64 bytes, with the checksum as stored.
    pub(crate) fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.root.to_le_bytes());
        b[24..32].copy_from_slice(&self.root_sequence.to_le_bytes());
        b[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        b[40..48].copy_from_slice(&self.pgid.to_le_bytes());
        b[48..56].copy_from_slice(&self.txid.to_le_bytes());
        b[56..64].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    /// FNV-1a 64 of the fields before the checksum.
    pub(crate) fn sum(&self) -> u64 {
        netns::fnv1a_64(&self.encode()[..CHECKSUM_AT])
    }

    /// bolt's `meta.validate`, with the checksum always required.
    pub(crate) fn fault(&self) -> Option<MetaFault> {
        if self.magic != MAGIC {
            Some(MetaFault::Magic)
        } else if self.version != VERSION {
            Some(MetaFault::Version)
        } else if self.checksum != self.sum() {
            Some(MetaFault::Checksum)
        } else {
            None
        }
    }

    /// A whole meta page of `page_size` bytes for this meta: id `txid % 2`, checksum set.
    pub(crate) fn page(&self, page_size: usize) -> Vec<u8> {
        let mut m = *self;
        m.checksum = m.sum();
        let mut p = vec![0u8; page_size];
        Header {
            id: m.txid % 2,
            flags: META,
            count: 0,
            overflow: 0,
        }
        .write(&mut p);
        if let Some(dst) = p.get_mut(HEADER..HEADER + META_LEN) {
            dst.copy_from_slice(&m.encode());
        }
        p
    }
}

/// One element of a leaf page (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) flags: u32,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

impl Entry {
    pub(crate) fn is_bucket(&self) -> bool {
        self.flags & BUCKET_LEAF != 0
    }
}

/// The bytes of element `i`'s key (and, for a leaf, value) of a page whose bytes are `p`.
fn element_slice(p: &[u8], at: usize, pos: u32, len: usize) -> Result<&[u8], String> {
    let start = at
        .checked_add(pos as usize)
        .ok_or_else(|| "element position overflows".to_string())?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| "element size overflows".to_string())?;
    p.get(start..end).ok_or_else(|| {
        format!(
            "an element's data ({start}..{end}) lies outside the page ({} bytes)",
            p.len()
        )
    })
}

/// The four header words of element `i` of the `count` of page `p`, and where it starts.
fn element_words(p: &[u8], i: usize, count: u16) -> Result<(usize, [u32; 4]), String> {
    let at = HEADER + ELEM * i;
    let word = |j: usize| {
        u32_at(p, at + 4 * j).ok_or_else(|| {
            format!(
                "element {i} of {count} lies outside the page ({} bytes)",
                p.len()
            )
        })
    };
    Ok((at, [word(0)?, word(1)?, word(2)?, word(3)?]))
}

/// The elements of a leaf page `p` (header included), checked: inside the page, keys
/// non-empty and strictly ascending.
pub(crate) fn leaf_entries(p: &[u8], count: u16) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::with_capacity(usize::from(count));
    for i in 0..usize::from(count) {
        let (at, [flags, pos, ksize, vsize]) = element_words(p, i, count)?;
        let (ksize, vsize) = (ksize as usize, vsize as usize);
        let kv = element_slice(p, at, pos, ksize.saturating_add(vsize))?;
        let (key, value) = kv.split_at(ksize.min(kv.len()));
        check_order(out.last().map(|e| e.key.as_slice()), key, i)?;
        out.push(Entry {
            flags,
            key: key.to_vec(),
            value: value.to_vec(),
        });
    }
    Ok(out)
}

/// The elements of a branch page `p`: (first key of the child, child pgid), checked like
/// [`leaf_entries`].
pub(crate) fn branch_entries(p: &[u8], count: u16) -> Result<Vec<(Vec<u8>, u64)>, String> {
    let mut out: Vec<(Vec<u8>, u64)> = Vec::with_capacity(usize::from(count));
    for i in 0..usize::from(count) {
        let (at, [pos, ksize, child_lo, child_hi]) = element_words(p, i, count)?;
        let child = u64::from(child_lo) | (u64::from(child_hi) << 32);
        let key = element_slice(p, at, pos, ksize as usize)?;
        check_order(out.last().map(|e| e.0.as_slice()), key, i)?;
        out.push((key.to_vec(), child));
    }
    Ok(out)
}

fn check_order(prev: Option<&[u8]>, key: &[u8], i: usize) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!("element {i} has an empty key"));
    }
    if let Some(prev) = prev
        && prev >= key
    {
        return Err(format!("element {i}: keys are not in ascending order"));
    }
    Ok(())
}

/// Size of a leaf page holding `entries` (unpadded).
pub(crate) fn leaf_size<'a>(entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> usize {
    entries
        .into_iter()
        .fold(HEADER, |n, (k, v)| n + ELEM + k.len() + v.len())
}

/// A leaf page for `entries` (sorted), unpadded, with header id 0 and overflow 0.
pub(crate) fn leaf_bytes(entries: &[(&[u8], u32, &[u8])]) -> Vec<u8> {
    let elements: Vec<_> = entries
        .iter()
        .map(|(k, flags, v)| ([*flags, 0, k.len() as u32, v.len() as u32], *k, *v))
        .collect();
    page_bytes(LEAF, &elements, 1)
}

/// A branch page for `children` (first key, pgid), unpadded, header id 0.
pub(crate) fn branch_bytes(children: &[(&[u8], u64)]) -> Vec<u8> {
    let elements: Vec<_> = children
        .iter()
        .map(|(k, child)| {
            let words = [0, k.len() as u32, *child as u32, (*child >> 32) as u32];
            (words, *k, &[][..])
        })
        .collect();
    page_bytes(BRANCH, &elements, 0)
}

/// A page of type `flags` (header id 0, overflow 0, unpadded) holding `elements`: each one's
/// four header words, its key and its value, the data laid out after the element headers in
/// order. Word `pos_word` of each element is set to its data's offset from the element.
fn page_bytes(flags: u16, elements: &[([u32; 4], &[u8], &[u8])], pos_word: usize) -> Vec<u8> {
    let size = leaf_size(elements.iter().map(|(_, k, v)| (*k, *v)));
    let mut p = vec![0u8; size];
    Header {
        id: 0,
        flags,
        count: elements.len().min(usize::from(u16::MAX)) as u16,
        overflow: 0,
    }
    .write(&mut p);
    let mut data = HEADER + ELEM * elements.len();
    for (i, (words, k, v)) in elements.iter().enumerate() {
        let at = HEADER + ELEM * i;
        let mut words = *words;
        words[pos_word] = (data - at) as u32;
        for (j, w) in words.iter().enumerate() {
            p[at + 4 * j..at + 4 * j + 4].copy_from_slice(&w.to_le_bytes());
        }
        p[data..data + k.len()].copy_from_slice(k);
        data += k.len();
        p[data..data + v.len()].copy_from_slice(v);
        data += v.len();
    }
    p
}

/// A bucket value: header `{root, sequence}` followed by `inline` (an inline leaf page, or
/// nothing when the bucket has its own pages).
pub(crate) fn bucket_value(root: u64, sequence: u64, inline: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(BUCKET_HEADER + inline.len());
    v.extend_from_slice(&root.to_le_bytes());
    v.extend_from_slice(&sequence.to_le_bytes());
    v.extend_from_slice(inline);
    v
}

/// Bytes a freelist of `count` ids takes (bolt's `freelist.size`).
pub(crate) fn freelist_size(count: usize) -> usize {
    let n = if count >= usize::from(COUNT_OVERFLOW) {
        count + 1
    } else {
        count
    };
    HEADER + 8 * n
}

/// A freelist page for `ids` (sorted), unpadded, header id 0.
pub(crate) fn freelist_bytes(ids: &[u64]) -> Vec<u8> {
    let mut p = vec![0u8; freelist_size(ids.len())];
    let overflow = ids.len() >= usize::from(COUNT_OVERFLOW);
    Header {
        id: 0,
        flags: FREELIST,
        count: if overflow {
            COUNT_OVERFLOW
        } else {
            ids.len() as u16
        },
        overflow: 0,
    }
    .write(&mut p);
    let mut at = HEADER;
    if overflow {
        p[at..at + 8].copy_from_slice(&(ids.len() as u64).to_le_bytes());
        at += 8;
    }
    for id in ids {
        p[at..at + 8].copy_from_slice(&id.to_le_bytes());
        at += 8;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trip_and_golden_bytes() {
        let p = leaf_bytes(&[(b"a", 0, b"xy"), (b"bc", 1, b"")]);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0, 0, 0, 0, 0, 0, 0, 0, // id
            2, 0,                   // flags: leaf
            2, 0,                   // count
            0, 0, 0, 0,             // overflow
            0, 0, 0, 0, 32, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, // flags 0, pos 32, ksize 1, vsize 2
            1, 0, 0, 0, 19, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, // flags 1, pos 19, ksize 2, vsize 0
            b'a', b'x', b'y', b'b', b'c',
        ];
        assert_eq!(p, want);
        let e = leaf_entries(&p, 2).unwrap();
        assert_eq!(e[0].key, b"a");
        assert_eq!(e[0].value, b"xy");
        assert!(e[1].is_bucket() && e[1].value.is_empty());
        // out of bounds and out of order are reasons, not panics
        assert!(leaf_entries(&p, 3).is_err());
        assert!(leaf_entries(&p[..40], 2).is_err());
        let swapped = leaf_bytes(&[(b"b", 0, b""), (b"a", 0, b"")]);
        assert!(leaf_entries(&swapped, 2).unwrap_err().contains("ascending"));
    }

    #[test]
    fn branch_round_trip_and_golden_bytes() {
        let p = branch_bytes(&[(b"a", 3), (b"bc", 0x0102_0304_0506_0708)]);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0, 0, 0, 0, 0, 0, 0, 0, // id
            1, 0,                   // flags: branch
            2, 0,                   // count
            0, 0, 0, 0,             // overflow
            32, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, // pos 32, ksize 1, pgid 3
            17, 0, 0, 0, 2, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, // pos 17, ksize 2, pgid
            b'a', b'b', b'c',
        ];
        assert_eq!(p, want);
        let e = branch_entries(&p, 2).unwrap();
        assert_eq!(
            e,
            [(b"a".to_vec(), 3), (b"bc".to_vec(), 0x0102_0304_0506_0708)]
        );
        assert!(branch_entries(&p, 3).is_err());
        assert!(branch_entries(&p[..40], 2).is_err());
        let swapped = branch_bytes(&[(b"b", 3), (b"a", 4)]);
        assert!(
            branch_entries(&swapped, 2)
                .unwrap_err()
                .contains("ascending")
        );
    }

    #[test]
    fn meta_checksum_and_faults() {
        let m = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: 3,
            root_sequence: 0,
            freelist: 2,
            pgid: 4,
            txid: 1,
            checksum: 0,
        };
        let page = m.page(4096);
        let back = Meta::parse(&page[HEADER..]).unwrap();
        assert_eq!(back.fault(), None);
        assert_eq!(Header::parse(&page).unwrap().id, 1);
        let mut bad = back;
        bad.txid = 2;
        assert_eq!(bad.fault(), Some(MetaFault::Checksum));
        bad.version = 1;
        assert_eq!(bad.fault(), Some(MetaFault::Version));
        bad.magic = 0;
        assert_eq!(bad.fault(), Some(MetaFault::Magic));
    }

    #[test]
    fn freelist_overflow_count() {
        let ids: Vec<u64> = (10..10 + 0xFFFF).collect();
        let p = freelist_bytes(&ids);
        let h = Header::parse(&p).unwrap();
        assert_eq!(h.count, 0xFFFF);
        assert_eq!(u64_at(&p, HEADER), Some(0xFFFF));
        assert_eq!(u64_at(&p, HEADER + 8), Some(10));
        let small = freelist_bytes(&[5, 7]);
        assert_eq!(Header::parse(&small).unwrap().count, 2);
        assert_eq!(small.len(), 32);
    }
}
