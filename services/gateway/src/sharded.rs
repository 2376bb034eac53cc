//! A map split over several locks, for per-key state touched on every request.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

/// foldhash with a random seed, as the token and metric caches use: a rate-limit key is hashed
/// twice per policy and request (its shard, then its entry), and SipHash cost several times
/// as much for these 40-80 byte keys.
type Hasher = foldhash::fast::RandomState;

const SHARDS: usize = 16;

/// `String`-keyed state in 16 separately locked maps.
pub struct Sharded<V> {
    shards: Vec<Mutex<HashMap<String, V, Hasher>>>,
    hasher: Hasher,
}

impl<V> Default for Sharded<V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            hasher: Hasher::default(),
        }
    }
}

impl<V> Sharded<V> {
    /// The locked shard holding `key`; `None` if a holder panicked.
    pub fn shard(&self, key: &str) -> Option<MutexGuard<'_, HashMap<String, V, Hasher>>> {
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        self.shards[i].lock().ok()
    }

    /// Most entries a shard keeps before it sheds the ones `keep` rejects.
    pub fn capacity(total: usize) -> usize {
        total / SHARDS
    }
}
