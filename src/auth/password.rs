//! argon2id hashing and verification on a fixed set of worker threads, each reusing one
//! memory buffer for every hash it computes, behind a bounded queue. Memory is therefore
//! bounded by design (workers × the argon2 memory cost, whatever the load), and a flood of
//! password proofs beyond the queue answers 503 at once instead of piling up. Unknown logins
//! are verified against a dummy hash so that timing does not tell. Hashes are standard PHC
//! strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), as Dovecot reads them.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use futures_util::{StreamExt, TryStreamExt};
use subtle::ConstantTimeEq;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::config::{Argon2Config, Config};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// What a client is told to wait when the queue is full: a hash takes milliseconds, so the
/// queue drains within a second unless the overload lasts.
const RETRY_AFTER_SECS: u64 = 1;

/// The hashing pool. Cloning shares it; the worker threads stop once every clone is gone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: mpsc::Sender<Job>,
    /// One permit per job running or waiting: `workers + max_queued`.
    slots: Arc<Semaphore>,
    workers: usize,
    dummy_hash: String,
    verifications: AtomicU64,
}

enum Work {
    Hash(String),
    Verify { password: String, phc: String },
}

enum Done {
    Hashed(String),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Done, String>>,
    /// The caller's span (request id) for what the worker logs.
    span: tracing::Span,
    /// Held until the work is done, so that the queue bound counts running jobs too.
    _slot: OwnedSemaphorePermit,
}

/// A place in the hashing queue, taken before anything else of a request is done (throttle
/// counts, database reads), so that an overloaded pool answers 503 before any of it.
pub struct HashSlot {
    hasher: PasswordHasher,
    permit: OwnedSemaphorePermit,
}

impl PasswordHasher {
    /// Starts the workers (`max_concurrent`, the number of cores when 0) and computes the
    /// dummy hash on the first of them.
    pub fn new(config: &Argon2Config) -> Result<Self, argon2::Error> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )?;
        let workers = if config.max_concurrent == 0 {
            Config::cores()
        } else {
            config.max_concurrent
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (dummy_tx, dummy_rx) = mpsc::channel();
        for index in 0..workers {
            let queue = queue.clone();
            let params = params.clone();
            let dummy = (index == 0).then(|| dummy_tx.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || run_worker(&queue, &params, dummy))
                .map_err(|_| argon2::Error::ThreadsTooMany)?;
        }
        drop(dummy_tx);
        let dummy_hash = dummy_rx
            .recv()
            .map_err(|_| argon2::Error::AlgorithmInvalid)?
            .map_err(|_| argon2::Error::AlgorithmInvalid)?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                slots: Arc::new(Semaphore::new(workers + config.max_queued)),
                workers,
                dummy_hash,
                verifications: AtomicU64::new(0),
            }),
        })
    }

    /// Hashes computed at once.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// A place in the queue, or 503 `service_unavailable` with `Retry-After` when every
    /// place is taken.
    pub fn reserve(&self) -> ApiResult<HashSlot> {
        let permit = self.inner.slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "too many password checks are waiting; retry shortly",
            )
            .with_retry_after(RETRY_AFTER_SECS)
        })?;
        Ok(HashSlot {
            hasher: self.clone(),
            permit,
        })
    }

    /// The argon2id PHC string of `password` (with a fresh random salt); 503 when the queue
    /// is full.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.reserve()?.hash(password).await
    }

    /// Whether `password` matches `stored` (see [`HashSlot::verify`]); 503 when the queue is
    /// full.
    pub async fn verify(&self, password: String, stored: Option<String>) -> ApiResult<bool> {
        self.reserve()?.verify(password, stored).await
    }

    /// Hashes many passwords (a CSV import), waiting for room in the queue rather than
    /// refusing, with at most one job per worker queued at once: other requests keep their
    /// places.
    pub async fn hash_all(&self, passwords: Vec<String>) -> ApiResult<Vec<String>> {
        futures_util::stream::iter(passwords)
            .map(|password| async move {
                let permit = self
                    .inner
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(ApiError::internal)?;
                let slot = HashSlot {
                    hasher: self.clone(),
                    permit,
                };
                slot.hash(password).await
            })
            .buffered(self.inner.workers)
            .try_collect()
            .await
    }

    /// argon2 verifications run so far (real or dummy): lets tests prove that an unknown
    /// login costs one verification like a wrong password.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    async fn run(&self, work: Work, slot: OwnedSemaphorePermit) -> ApiResult<Done> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work,
            reply,
            span: tracing::Span::current(),
            _slot: slot,
        };
        self.inner
            .jobs
            .send(job)
            .map_err(|_| ApiError::internal("the password workers have stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("a password worker dropped its job"))?
            .map_err(ApiError::internal)
    }
}

impl HashSlot {
    /// The argon2id PHC string of `password`, with the configured cost.
    pub async fn hash(self, password: String) -> ApiResult<String> {
        match self.hasher.run(Work::Hash(password), self.permit).await? {
            Done::Hashed(phc) => Ok(phc),
            Done::Verified(_) => Err(ApiError::internal("a hash job answered a verification")),
        }
    }

    /// Whether `password` matches `stored`, computed with the stored hash's own parameters;
    /// with no stored hash, spends the same time on the dummy hash and answers false.
    pub async fn verify(self, password: String, stored: Option<String>) -> ApiResult<bool> {
        let (phc, known) = match stored {
            Some(hash) => (hash, true),
            None => (self.hasher.inner.dummy_hash.clone(), false),
        };
        self.hasher
            .inner
            .verifications
            .fetch_add(1, Ordering::Relaxed);
        match self
            .hasher
            .run(Work::Verify { password, phc }, self.permit)
            .await?
        {
            Done::Verified(matched) => Ok(known && matched),
            Done::Hashed(_) => Err(ApiError::internal("a verification answered a hash")),
        }
    }
}

/// One worker: takes jobs until the pool is dropped. Its memory buffer grows to the largest
/// cost it has met (the configured one, or a stored hash's) and is reused for every job.
fn run_worker(
    queue: &Mutex<mpsc::Receiver<Job>>,
    params: &Params,
    dummy: Option<mpsc::Sender<Result<String, String>>>,
) {
    let mut memory = Memory::default();
    if let Some(dummy) = dummy {
        let hash = hash_with(
            &mut memory,
            params,
            b"postier dummy password for unknown logins",
        );
        let _ = dummy.send(hash);
    }
    loop {
        // The lock is held while waiting, by one idle worker at a time; it is released
        // before the work, so the others take the next jobs meanwhile.
        let next = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else { return };
        if job.reply.is_closed() {
            // The request went away (client gone, timeout): nobody waits for this hash.
            continue;
        }
        let _entered = job.span.enter();
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| match &job.work {
            Work::Hash(password) => {
                hash_with(&mut memory, params, password.as_bytes()).map(Done::Hashed)
            }
            Work::Verify { password, phc } => Ok(Done::Verified(verify_with(
                &mut memory,
                password.as_bytes(),
                phc,
            ))),
        }))
        .unwrap_or_else(|_| Err("argon2 panicked".to_string()));
        let _ = job.reply.send(done);
    }
}

/// The size of a transparent huge page (x86-64, and arm64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// A worker's argon2 memory, reused from one hash to the next, on transparent huge pages
/// where the system allows them (its `madvise` mode, the default of Debian and most
/// distributions). argon2 reads its blocks at random across 19 MiB: with 4 KiB pages nearly
/// every read misses the TLB, and more so after the worker was preempted by a request or the
/// database; on 2 MiB pages the 19 MiB are ten TLB entries (measured: README "argon2 on
/// huge pages").
#[derive(Default)]
struct Memory {
    buffer: Vec<Block>,
    /// The first block used: the first one from a huge-page boundary on.
    start: usize,
}

impl Memory {
    /// `count` blocks, the buffer grown (and kept) when too small.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.buffer.len() < self.start + count {
            let size = std::mem::size_of::<Block>();
            // The old buffer goes first: memory stays within one buffer per worker.
            self.buffer = Vec::new();
            // Room for the blocks from the first boundary on, rounded up to whole huge
            // pages (the last one is faulted in whole), and for the block that may straddle
            // the boundary.
            let capacity = (HUGE_PAGE + size + (count * size).next_multiple_of(HUGE_PAGE)) / size;
            let mut buffer: Vec<Block> = Vec::with_capacity(capacity);
            let address = buffer.as_ptr() as usize;
            self.start = (address.next_multiple_of(HUGE_PAGE) - address).div_ceil(size);
            // Advised before the first write, so that the writes fault in huge pages.
            crate::sys::advise_huge_pages(&mut buffer);
            buffer.resize(self.start + count, Block::default());
            self.buffer = buffer;
        }
        &mut self.buffer[self.start..self.start + count]
    }
}

fn hash_with(memory: &mut Memory, params: &Params, password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let out = out.get_mut(..len).ok_or("argon2 output too long")?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password,
            salt_raw,
            out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Recomputes the stored hash's output with its own algorithm, version and parameters, and
/// compares in constant time. Anything unreadable is a mismatch.
fn verify_with(memory: &mut Memory, password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt_raw,
        out,
        memory.blocks(params.block_count()),
    );
    computed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[test]
    fn a_workers_blocks_begin_at_a_huge_page_boundary_and_grow_in_one_buffer() {
        let mut memory = Memory::default();
        for count in [64, 19_456, 19_456, 40_000] {
            let blocks = memory.blocks(count);
            assert_eq!(blocks.len(), count);
            let offset = (blocks.as_ptr() as usize) % HUGE_PAGE;
            assert!(offset < std::mem::size_of::<Block>(), "offset {offset}");
            assert!(
                memory.buffer.capacity() * std::mem::size_of::<Block>()
                    <= (count * std::mem::size_of::<Block>()).next_multiple_of(HUGE_PAGE)
                        + 2 * HUGE_PAGE,
                "one buffer, with at most two huge pages more than asked"
            );
        }
    }

    fn cheap() -> Argon2Config {
        Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            max_queued: 4,
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
        assert!(!hasher
            .verify("anything".into(), Some("not a hash".into()))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        // Ours, checked by the reference implementation of the crate (as Dovecot would).
        for _ in 0..3 {
            let ours = hasher.hash("correct horse".into()).await.unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok());
            assert!(Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err());
        }
        // Theirs, with other costs than the pool's (larger and smaller), and argon2i.
        let salt = SaltString::generate(&mut OsRng);
        for (algorithm, m) in [
            (Algorithm::Argon2id, 512),
            (Algorithm::Argon2id, 32),
            (Algorithm::Argon2i, 128),
        ] {
            let theirs = Argon2::new(
                algorithm,
                Version::V0x13,
                Params::new(m, 2, 1, None).unwrap(),
            )
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
            assert!(hasher
                .verify("correct horse".into(), Some(theirs.clone()))
                .await
                .unwrap());
            assert!(!hasher
                .verify("wrong horse".into(), Some(theirs))
                .await
                .unwrap());
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_503_with_retry_after_and_frees_its_places() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let held: Vec<HashSlot> = (0..6).map(|_| hasher.reserve().unwrap()).collect();
        let refused = hasher.reserve().err().unwrap();
        assert_eq!(refused.code, ErrorCode::ServiceUnavailable);
        assert_eq!(refused.retry_after_secs, Some(1));
        drop(held);
        assert!(hasher.verify("x".into(), None).await.is_ok());
        // A bulk job waits for room instead.
        let all = hasher
            .hash_all((0..20).map(|i| format!("password {i}")).collect())
            .await
            .unwrap();
        assert_eq!(all.len(), 20);
    }
}
