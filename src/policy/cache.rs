//! The policy service's in-memory state. All of it may be lost (docs/architecture.md "Stateless instances"): the database is the
//! truth, these only keep decisions fast.
//!
//! - [`SenderCache`]: login → what that address may do (kind, pack limits, aliases), or "not
//!   hosted here". Entries live [`SENDER_TTL`]: a deleted address, a new alias or a pack
//!   change takes effect within that time on every instance.
//! - [`Budgets`]: per address, the per-minute buckets of its last 24 h, reloaded from the
//!   database when older than [`BUDGET_TTL`] (so other instances' counts show up within that
//!   time) and updated at once by this instance's own writes. Each address has an async lock:
//!   checking and adding a message's recipients is atomic within one instance.
//! - [`Instances`]: per SMTP transaction (`instance`), the distinct recipients seen, how many
//!   were accepted, and whether the transaction was rejected. Bounded by [`MAX_INSTANCES`] and
//!   an idle time of [`INSTANCE_IDLE_TTL`]; losing an entry only loses the `RCPT` count, the
//!   `DATA` check with Postfix's `recipient_count` still applies.
//!
//! Times come from the injectable clock, so tests that move it also age the caches.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::{AddressKind, Pack};
use crate::repo::counters::{self, BUCKET_SECS};
use crate::repo::sending::SendingIdentity;

/// How long what is known about a login (kind, pack, aliases, existence) is trusted.
pub const SENDER_TTL: Duration = Duration::seconds(5);
/// How long a cached 24 h count is trusted before it is read again from the database.
pub const BUDGET_TTL: Duration = Duration::seconds(2);
/// A transaction not heard of for this long is forgotten.
pub const INSTANCE_IDLE_TTL: Duration = Duration::hours(1);
/// Most transactions remembered at once.
pub const MAX_INSTANCES: usize = 100_000;
/// Most logins remembered at once.
pub const MAX_SENDERS: usize = 200_000;
/// The sending budget's sliding window.
pub const WINDOW_SECS: i64 = 24 * 3600;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data inconsistent in a way
    // worse than losing a cache entry: keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A hosted address as the policy service sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub address_id: Uuid,
    pub address: String,
    pub kind: AddressKind,
    pub pack: Pack,
    pub recipients_per_message: u32,
    pub recipients_per_24h: u32,
    aliases: Vec<String>,
}

impl Sender {
    pub fn new(identity: SendingIdentity) -> Sender {
        let (pack, kind) = (identity.pack, identity.kind);
        let limits = pack.limits(0);
        Sender {
            address_id: identity.address_id,
            address: identity.address,
            kind,
            pack,
            recipients_per_message: limits.recipients_per_message,
            recipients_per_24h: limits.messages_per_24h,
            aliases: identity.aliases,
        }
    }

    /// Whether this address may use `envelope_sender` (normalised) in `MAIL FROM`: itself, one
    /// of its aliases, or the null sender `<>` (delivery and read notifications). `+` is an
    /// ordinary character of local parts here (Postfix runs with an empty
    /// `recipient_delimiter`): `alice+news@` is another address, maybe someone else's.
    pub fn may_send_as(&self, envelope_sender: &str) -> bool {
        envelope_sender.is_empty() || self.owns(envelope_sender)
    }

    fn owns(&self, address: &str) -> bool {
        self.address == address || self.aliases.iter().any(|a| a == address)
    }
}

/// What is known about one login: the sender (`None`: not hosted here) and when it was read.
type Known = (Option<Arc<Sender>>, DateTime<Utc>);

/// Login → what is known about it.
#[derive(Default)]
pub struct SenderCache {
    map: Mutex<HashMap<String, Known>>,
}

impl SenderCache {
    /// The cached answer for `login` when it is fresh.
    pub fn get(&self, login: &str, now: DateTime<Utc>) -> Option<Option<Arc<Sender>>> {
        let map = lock(&self.map);
        let (sender, read_at) = map.get(login)?;
        fresh(*read_at, now, SENDER_TTL).then(|| sender.clone())
    }

    pub fn put(&self, login: String, sender: Option<Arc<Sender>>, now: DateTime<Utc>) {
        let mut map = lock(&self.map);
        if map.len() >= MAX_SENDERS {
            map.retain(|_, (_, read_at)| fresh(*read_at, now, SENDER_TTL));
            if map.len() >= MAX_SENDERS {
                map.clear();
            }
        }
        map.insert(login, (sender, now));
    }

    /// Forgets stale entries.
    pub fn sweep(&self, now: DateTime<Utc>) {
        lock(&self.map).retain(|_, (_, read_at)| fresh(*read_at, now, SENDER_TTL));
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn fresh(read_at: DateTime<Utc>, now: DateTime<Utc>, ttl: Duration) -> bool {
    read_at <= now && now - read_at < ttl
}

/// One SMTP transaction's recipients and verdict.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Hashes of the distinct (normalised) recipients seen at `RCPT`, and whether each was
    /// accepted. Hashes, not strings: at most `limit + 1` of 8 bytes each.
    recipients: Vec<(u64, bool)>,
    /// Distinct recipients accepted.
    pub accepted: u32,
    /// Refused for too many recipients: every later stage is refused too.
    pub rejected: bool,
    /// Already added to the 24 h count.
    pub counted: bool,
    touched: DateTime<Utc>,
}

/// What a new `RCPT` means for its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// Already seen and accepted in this transaction: it costs nothing more.
    Duplicate,
    /// Within the per-message limit; `accepted` recipients were accepted before it.
    Within { accepted: u32 },
    /// This recipient (or an earlier one) exceeded the per-message limit.
    TooMany,
}

impl Instance {
    fn new(now: DateTime<Utc>) -> Instance {
        Instance {
            recipients: Vec::new(),
            accepted: 0,
            rejected: false,
            counted: false,
            touched: now,
        }
    }

    /// Registers the recipient with `hash` against `limit` distinct recipients per message.
    pub fn recipient(&mut self, hash: u64, limit: u32) -> Recipient {
        if self.rejected {
            return Recipient::TooMany;
        }
        match self.recipients.iter().find(|(h, _)| *h == hash) {
            Some((_, true)) => Recipient::Duplicate,
            Some((_, false)) => Recipient::Within {
                accepted: self.accepted,
            },
            None if self.recipients.len() >= limit as usize => {
                self.rejected = true;
                Recipient::TooMany
            }
            None => {
                self.recipients.push((hash, false));
                Recipient::Within {
                    accepted: self.accepted,
                }
            }
        }
    }

    /// Marks the recipient with `hash` accepted.
    pub fn accept(&mut self, hash: u64) {
        if let Some(entry) = self.recipients.iter_mut().find(|(h, _)| *h == hash) {
            if !entry.1 {
                entry.1 = true;
                self.accepted += 1;
            }
        }
    }
}

/// Transactions in progress, keyed by login and `instance`.
pub struct Instances {
    map: Mutex<HashMap<String, Instance>>,
    hasher: RandomState,
}

impl Default for Instances {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
        }
    }
}

impl Instances {
    /// A keyed hash of a normalised recipient (the key is random per process).
    pub fn hash(&self, recipient: &str) -> u64 {
        self.hasher.hash_one(recipient)
    }

    /// Runs `f` on the transaction `key`, created when unknown.
    pub fn with<R>(&self, key: &str, now: DateTime<Utc>, f: impl FnOnce(&mut Instance) -> R) -> R {
        let mut map = lock(&self.map);
        if !map.contains_key(key) && map.len() >= MAX_INSTANCES {
            Self::evict(&mut map, now);
        }
        let instance = map
            .entry(key.to_string())
            .or_insert_with(|| Instance::new(now));
        instance.touched = now;
        f(instance)
    }

    /// A copy of the transaction `key`, when known.
    pub fn get(&self, key: &str) -> Option<Instance> {
        lock(&self.map).get(key).cloned()
    }

    pub fn remove(&self, key: &str) {
        lock(&self.map).remove(key);
    }

    /// Forgets idle transactions.
    pub fn sweep(&self, now: DateTime<Utc>) {
        lock(&self.map).retain(|_, i| fresh(i.touched, now, INSTANCE_IDLE_TTL));
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(map: &mut HashMap<String, Instance>, now: DateTime<Utc>) {
        map.retain(|_, i| fresh(i.touched, now, INSTANCE_IDLE_TTL));
        if map.len() >= MAX_INSTANCES {
            // Still full of live transactions: drop the idler half. Their DATA checks still
            // hold (Postfix's recipient_count), only their RCPT counts are lost.
            let mut by_age: Vec<(DateTime<Utc>, String)> = map
                .iter()
                .map(|(key, i)| (i.touched, key.clone()))
                .collect();
            by_age.sort_unstable();
            for (_, key) in by_age.iter().take(by_age.len() / 2) {
                map.remove(key);
            }
            tracing::warn!(
                kept = map.len(),
                "policy service: too many transactions in progress; forgot the idlest half"
            );
        }
    }
}

/// One address's counted recipients over the last 24 h, per minute bucket.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    buckets: VecDeque<(i64, i64)>,
    loaded_at: Option<DateTime<Utc>>,
}

impl Budget {
    /// Whether the buckets were read from the database less than [`BUDGET_TTL`] ago.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.loaded_at.is_some_and(|at| fresh(at, now, BUDGET_TTL))
    }

    /// Replaces the buckets with what the database holds (oldest first).
    pub fn load(&mut self, buckets: Vec<(i64, i64)>, now: DateTime<Utc>) {
        self.buckets = buckets.into();
        self.loaded_at = Some(now);
    }

    /// Drops the buckets that left the window ending at `now`.
    pub fn trim(&mut self, now: DateTime<Utc>) {
        let first = counters::first_bucket(now, WINDOW_SECS);
        while self.buckets.front().is_some_and(|(b, _)| *b < first) {
            self.buckets.pop_front();
        }
    }

    pub fn total(&self) -> i64 {
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    /// The oldest bucket still counted.
    pub fn oldest_bucket(&self) -> Option<i64> {
        self.buckets.front().map(|(b, _)| *b)
    }

    /// Counts `n` in `bucket` (this instance's own write).
    pub fn add(&mut self, bucket: i64, n: i64) {
        match self.buckets.iter_mut().rev().find(|(b, _)| *b == bucket) {
            Some(entry) => entry.1 += n,
            None => {
                let at = self.buckets.partition_point(|(b, _)| *b < bucket);
                self.buckets.insert(at, (bucket, n));
            }
        }
    }

    /// When at least `needed` counted recipients will have left the window; `None` when
    /// fewer than `needed` are counted at all.
    pub fn frees_at(&self, needed: i64) -> Option<DateTime<Utc>> {
        let mut freed = 0;
        for (bucket, n) in &self.buckets {
            freed += n;
            if freed >= needed {
                return leaves_window_at(*bucket);
            }
        }
        None
    }
}

/// The instant `bucket` stops being counted in a window of [`WINDOW_SECS`] (see
/// `counters::first_bucket`: a window covers `WINDOW_SECS / BUCKET_SECS` buckets, the
/// current one included).
pub fn leaves_window_at(bucket: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp((bucket + WINDOW_SECS / BUCKET_SECS) * BUCKET_SECS, 0)
}

/// Per-address budgets, each behind its own async lock.
#[derive(Default)]
pub struct Budgets {
    map: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Budget>>>>,
}

impl Budgets {
    /// The budget of `address_id` (empty and stale when first seen).
    pub fn entry(&self, address_id: Uuid) -> Arc<tokio::sync::Mutex<Budget>> {
        lock(&self.map).entry(address_id).or_default().clone()
    }

    /// Forgets budgets nobody uses whose data is stale anyway.
    pub fn sweep(&self, now: DateTime<Utc>) {
        lock(&self.map).retain(|_, budget| {
            Arc::strong_count(budget) > 1 || budget.try_lock().map_or(true, |b| b.is_fresh(now))
        });
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(address: &str, aliases: &[&str]) -> Sender {
        Sender::new(SendingIdentity {
            address_id: Uuid::nil(),
            address: address.into(),
            kind: AddressKind::Personal,
            pack: Pack::Starter,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        })
    }

    #[test]
    fn a_sender_may_use_itself_its_aliases_and_the_null_sender() {
        let s = sender("alice@example.test", &["info@example.test"]);
        for ok in ["alice@example.test", "info@example.test", ""] {
            assert!(s.may_send_as(ok), "{ok}");
        }
        for refused in [
            "bob@example.test",
            "alice@example.org",
            "alice+news@example.test",
            "info+x@example.test",
            "alice",
            "alicex@example.test",
        ] {
            assert!(!s.may_send_as(refused), "{refused}");
        }
        assert_eq!(s.recipients_per_message, 100);
        assert_eq!(s.recipients_per_24h, 500);
    }

    #[test]
    fn a_sender_takes_the_limits_of_its_pack() {
        let s = Sender::new(SendingIdentity {
            address_id: Uuid::nil(),
            address: "a@b.test".into(),
            kind: AddressKind::Catchall,
            pack: Pack::Free,
            aliases: vec![],
        });
        assert_eq!((s.pack, s.kind), (Pack::Free, AddressKind::Catchall));
        assert_eq!((s.recipients_per_message, s.recipients_per_24h), (10, 500));
    }

    #[test]
    fn an_instance_counts_distinct_recipients_and_stays_rejected() {
        let mut i = Instance::new(Utc::now());
        assert_eq!(i.recipient(1, 2), Recipient::Within { accepted: 0 });
        i.accept(1);
        assert_eq!(i.recipient(1, 2), Recipient::Duplicate);
        assert_eq!(i.recipient(2, 2), Recipient::Within { accepted: 1 });
        // Not accepted yet (e.g. deferred): asking again is not a new recipient.
        assert_eq!(i.recipient(2, 2), Recipient::Within { accepted: 1 });
        i.accept(2);
        i.accept(2);
        assert_eq!(i.accepted, 2);
        assert_eq!(i.recipient(3, 2), Recipient::TooMany);
        assert!(i.rejected);
        assert_eq!(i.recipient(1, 2), Recipient::TooMany);
    }

    #[test]
    fn transactions_are_bounded_in_number_and_idle_time() {
        let instances = Instances::default();
        let start = Utc::now();
        for i in 0..MAX_INSTANCES {
            let at = start + Duration::milliseconds(i as i64);
            instances.with(&i.to_string(), at, |_| ());
        }
        assert_eq!(instances.len(), MAX_INSTANCES);
        let later = start + Duration::seconds(200);
        instances.with("new", later, |i| i.accepted = 7);
        assert_eq!(instances.len(), MAX_INSTANCES / 2 + 1);
        assert!(instances.get("0").is_none(), "the idlest went first");
        assert!(instances.get(&(MAX_INSTANCES - 1).to_string()).is_some());
        assert_eq!(instances.get("new").map(|i| i.accepted), Some(7));
        instances.sweep(later + INSTANCE_IDLE_TTL - Duration::seconds(1));
        assert_eq!(instances.len(), 1);
        instances.sweep(later + INSTANCE_IDLE_TTL);
        assert!(instances.is_empty());
    }

    #[test]
    fn cached_logins_expire() {
        let cache = SenderCache::default();
        let now = Utc::now();
        cache.put("a@b.test".into(), None, now);
        assert_eq!(
            cache.get("a@b.test", now + SENDER_TTL - Duration::milliseconds(1)),
            Some(None)
        );
        assert_eq!(cache.get("a@b.test", now + SENDER_TTL), None);
        cache.sweep(now + SENDER_TTL);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_budget_slides_and_says_when_enough_frees_up() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let b0 = counters::bucket_of(now);
        let mut budget = Budget::default();
        assert!(!budget.is_fresh(now));
        budget.load(vec![(b0 - 1439, 5), (b0 - 10, 3)], now);
        assert!(budget.is_fresh(now));
        assert!(!budget.is_fresh(now + BUDGET_TTL));
        budget.add(b0, 2);
        budget.add(b0, 1);
        budget.add(b0 - 20, 4);
        assert_eq!(budget.total(), 15);
        assert_eq!(budget.oldest_bucket(), Some(b0 - 1439));
        // The oldest bucket leaves exactly 24 h after its start.
        let first_leaves = leaves_window_at(b0 - 1439).unwrap();
        assert_eq!(first_leaves.timestamp(), (b0 - 1439) * 60 + WINDOW_SECS);
        assert_eq!(budget.frees_at(5), Some(first_leaves));
        assert_eq!(budget.frees_at(6), leaves_window_at(b0 - 20));
        assert_eq!(budget.frees_at(16), None);
        budget.trim(first_leaves - Duration::seconds(1));
        assert_eq!(budget.total(), 15);
        budget.trim(first_leaves);
        assert_eq!(budget.total(), 10);
        assert_eq!(budget.oldest_bucket(), Some(b0 - 20));
    }
}
