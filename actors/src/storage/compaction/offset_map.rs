//! The cleaner's key → latest offset map over the dirty section of a log, bounded by
//! `log.cleaner.dedupe.buffer.size` as Kafka's is: each entry costs 24 bytes (a
//! 128-bit key hash and an offset), so the map holds `buffer / 24` keys. When it is
//! full the cleaner cleans up to where the map reached and leaves the rest for the
//! next pass.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bytes one entry is budgeted at (16-byte hash + 8-byte offset), as in Kafka.
pub const ENTRY_BYTES: usize = 24;

/// The map's keys are already digests: hashing them again (SipHash, the default)
/// would only cost time. Takes the digest's low 64 bits.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ *b as u64;
        }
    }
    fn write_u128(&mut self, digest: u128) {
        self.0 = digest as u64;
    }
}

#[derive(Debug)]
pub struct OffsetMap {
    map: HashMap<u128, i64, BuildHasherDefault<DigestHasher>>,
    max_entries: usize,
}

impl OffsetMap {
    pub fn with_buffer_bytes(buffer_bytes: usize) -> Self {
        let max_entries = (buffer_bytes / ENTRY_BYTES).max(1);
        OffsetMap {
            // Grown as keys arrive (up to max_entries): a pass over few keys keeps a
            // small table, in cache, instead of a sparse one sized for the bound.
            map: HashMap::with_capacity_and_hasher(
                max_entries.min(1 << 12),
                BuildHasherDefault::default(),
            ),
            max_entries,
        }
    }

    /// A 128-bit digest, so two keys colliding (and one wrongly shadowing the other)
    /// is as unlikely as with Kafka's MD5: SipHash-1-3 for one half, a multiply-mix
    /// over 8-byte words for the other. Neither half alone decides; both must
    /// collide at once. One SipHash pass per key instead of two: this runs for every
    /// record, twice per cleaning pass.
    fn digest(key: &[u8]) -> u128 {
        let mut sip = std::collections::hash_map::DefaultHasher::new();
        sip.write(key);
        let mut mix: u64 = 0x9e37_79b9_7f4a_7c15 ^ key.len() as u64;
        for word in key.chunks(8) {
            let mut bytes = [0u8; 8];
            bytes[..word.len()].copy_from_slice(word);
            mix = (mix ^ u64::from_le_bytes(bytes)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            mix ^= mix >> 33;
        }
        ((sip.finish() as u128) << 64) | mix as u128
    }

    /// Records `offset` as the latest for `key`. `false` when the map is full and the
    /// key is new: the caller stops the pass there.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let digest = Self::digest(key);
        if self.map.len() >= self.max_entries && !self.map.contains_key(&digest) {
            return false;
        }
        self.map.insert(digest, offset);
        true
    }

    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&Self::digest(key)).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_respects_its_bound() {
        let mut map = OffsetMap::with_buffer_bytes(3 * ENTRY_BYTES);
        assert!(map.put(b"a", 1));
        assert!(map.put(b"b", 2));
        assert!(map.put(b"a", 5));
        assert!(map.put(b"c", 6));
        assert!(!map.put(b"d", 7), "full: a new key is refused");
        assert!(map.put(b"b", 8), "an existing key still updates");
        assert_eq!(
            (map.get(b"a"), map.get(b"b"), map.get(b"d")),
            (Some(5), Some(8), None)
        );
        assert_eq!(map.len(), 3);
    }
}
