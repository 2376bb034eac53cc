//! A map split over several locks, for per-key state touched on every request.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 16;

/// `String`-keyed state in 16 separately locked maps.
pub struct Sharded<V> {
    shards: Vec<Mutex<HashMap<String, V>>>,
    hasher: RandomState,
}

impl<V> Default for Sharded<V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl<V> Sharded<V> {
    /// The locked shard holding `key`; `None` if a holder panicked.
    pub fn shard(&self, key: &str) -> Option<MutexGuard<'_, HashMap<String, V>>> {
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        self.shards[i].lock().ok()
    }

    /// Most entries a shard keeps before it sheds the ones `keep` rejects.
    pub fn capacity(total: usize) -> usize {
        total / SHARDS
    }
}
