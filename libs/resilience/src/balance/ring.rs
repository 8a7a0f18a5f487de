//! A consistent-hash ring (Karger et al., 1997; the "ketama" layout): requests with the same key
//! go to the same endpoint, and when endpoints come or go only the keys they owned move.
//!
//! Why not `hash(key) % n`? Because changing `n` remaps almost every key: with 4 endpoints
//! growing to 5, 80% of the keys change owner, and every cache warmed per endpoint goes cold at
//! once. On a ring, each endpoint owns the arcs that end at its points; adding an endpoint takes
//! ~1/(n+1) of the keys (only from the arcs its new points split), removing one hands only its
//! own keys to the next points clockwise.
//!
//! Each endpoint is placed at [`POINTS_PER_ENDPOINT`] pseudo-random points ("virtual nodes"),
//! not one: with a single point the arcs are wildly unequal (one endpoint may own half the
//! ring); with 160 the largest share stays within roughly ±20% of fair.
//!
//! The hash is FNV-1a followed by the murmur3 finaliser: stable across processes, platforms and
//! Rust versions (unlike `std`'s `DefaultHasher`), so every gateway replica builds the same
//! ring from the same endpoint list and agrees on each key's owner.

/// Points each endpoint places on the ring.
pub const POINTS_PER_ENDPOINT: u32 = 160;

/// A 64-bit hash that is the same everywhere, forever.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    // FNV's low bits mix poorly for short, similar inputs ("a#1", "a#2"); the finaliser fixes it.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The ring: sorted points, each naming the endpoint (by index) that owns it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// Places each endpoint (by its stable name) on the ring; indices follow `names`.
    pub(crate) fn build<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut points = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            for replica in 0..POINTS_PER_ENDPOINT {
                let point = stable_hash(format!("{name}#{replica}").as_bytes());
                points.push((point, index));
            }
        }
        // Ties between endpoints (vanishingly rare) are broken by index, so every replica of the
        // caller orders them alike.
        points.sort_unstable();
        Self { points }
    }

    /// The endpoints in ring order starting at `key_hash`: the owner first, then the fallbacks
    /// (each endpoint once), for skipping endpoints that are out of rotation.
    pub(crate) fn walk(&self, key_hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|(point, _)| *point < key_hash);
        let (before, after) = self.points.split_at(start);
        let mut seen = Vec::new();
        after
            .iter()
            .chain(before)
            .map(|(_, index)| *index)
            .filter(move |index| {
                if seen.contains(index) {
                    false
                } else {
                    seen.push(*index);
                    true
                }
            })
    }

    /// The owner of `key_hash`, if the ring has any endpoint.
    #[cfg(test)]
    pub(crate) fn owner(&self, key_hash: u64) -> Option<usize> {
        self.walk(key_hash).next()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count)
            .map(|i| format!("http://10.0.0.{i}:50052"))
            .collect()
    }

    fn owners(names: &[String], keys: &[u64]) -> Vec<String> {
        let ring = Ring::build(names.iter().map(String::as_str));
        keys.iter()
            .map(|key| names[ring.owner(*key).unwrap()].clone())
            .collect()
    }

    fn keys(count: usize) -> Vec<u64> {
        (0..count)
            .map(|i| stable_hash(format!("order-{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn the_hash_is_stable_across_builds_and_versions() {
        // Pinned values: a change here would silently reshuffle every deployment's keys.
        assert_eq!(stable_hash(b""), 17_280_346_270_528_514_342);
        assert_eq!(stable_hash(b"order-1"), stable_hash(b"order-1"));
        assert_ne!(stable_hash(b"order-1"), stable_hash(b"order-2"));
    }

    #[test]
    fn an_empty_ring_has_no_owner() {
        assert_eq!(Ring::build([]).owner(42), None);
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_own_keys() {
        let keys = keys(10_000);
        let before_names = names(10);
        let before = owners(&before_names, &keys);
        let removed = &before_names[3];
        let after_names: Vec<String> = before_names
            .iter()
            .filter(|name| *name != removed)
            .cloned()
            .collect();
        let after = owners(&after_names, &keys);
        let mut moved = 0;
        for (old, new) in before.iter().zip(&after) {
            if old != new {
                assert_eq!(old, removed, "a key of a surviving endpoint moved");
                moved += 1;
            }
        }
        // About 1/10 of the keys belonged to the removed endpoint.
        assert!((700..=1300).contains(&moved), "{moved} keys moved");
    }

    #[test]
    fn adding_an_endpoint_moves_about_one_in_n_plus_one_keys_all_to_it() {
        let keys = keys(10_000);
        let before = owners(&names(9), &keys);
        let after_names = names(10);
        let after = owners(&after_names, &keys);
        let moved: Vec<&String> = before
            .iter()
            .zip(&after)
            .filter(|(old, new)| old != new)
            .map(|(_, new)| new)
            .collect();
        assert!(moved.iter().all(|new| **new == after_names[9]));
        assert!((700..=1300).contains(&moved.len()), "{} moved", moved.len());
    }

    #[test]
    fn virtual_nodes_spread_keys_fairly() {
        let keys = keys(20_000);
        let mut shares: HashMap<String, usize> = HashMap::new();
        for owner in owners(&names(5), &keys) {
            *shares.entry(owner).or_default() += 1;
        }
        assert_eq!(shares.len(), 5);
        for (owner, share) in shares {
            // Fair is 4000 each.
            assert!((3000..=5000).contains(&share), "{owner} owns {share}");
        }
    }

    #[test]
    fn the_walk_visits_every_endpoint_once_owner_first() {
        let ring = Ring::build(["a", "b", "c"]);
        for key in keys(100) {
            let walk: Vec<usize> = ring.walk(key).collect();
            assert_eq!(walk.len(), 3);
            assert_eq!(walk[0], ring.owner(key).unwrap());
            let mut sorted = walk.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2]);
        }
    }

    #[test]
    fn a_key_past_the_last_point_wraps_to_the_first() {
        let ring = Ring::build(["a", "b"]);
        let first = ring.points[0].1;
        assert_eq!(ring.owner(u64::MAX), Some(first));
    }
}
