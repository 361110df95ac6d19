//! How long one argon2id hash and one verification take with the configured (by default
//! production) parameters, on one core: the unit behind every login, attach and address
//! creation; then how many verifications per second the hashing workers achieve with every
//! core verifying at once (the argon2 bound of the machine: 19 MiB blocks per core share the
//! memory bandwidth, so it is below cores ÷ one verification).
//! `cargo run --release --example argon2_cost`; `ARGON2_COST_BOUND_SECS` sets how long the
//! bound is measured (5 s), `ARGON2_COST_BOUND_ONLY=1` skips the single-core timings (for
//! `bench/accounts.sh`, which brackets short login runs with it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use postier::auth::PasswordHasher;
use postier::config::Argon2Config;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = Argon2Config {
        max_concurrent: 1,
        ..Argon2Config::default()
    };
    let hasher = PasswordHasher::new(&config).expect("parameters");
    let bound_only = std::env::var("ARGON2_COST_BOUND_ONLY").is_ok_and(|v| v == "1");
    let seconds: f64 = std::env::var("ARGON2_COST_BOUND_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(5.0);
    let runs = if bound_only { 1 } else { 30 };
    let mut hash_ms = Vec::new();
    let mut verify_ms = Vec::new();
    let mut hash = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        hash = hasher
            .hash("correct horse battery staple".into())
            .await
            .unwrap();
        hash_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        assert!(hasher
            .verify("correct horse battery staple".into(), Some(hash.clone()))
            .await
            .unwrap());
        verify_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    hash_ms.sort_by(f64::total_cmp);
    verify_ms.sort_by(f64::total_cmp);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if !bound_only {
        print_single_core(&config, &hash, &hash_ms, &verify_ms, cores);
    }

    // Every core at once, through the same worker pool the server uses.
    let config = Argon2Config {
        max_concurrent: cores,
        ..Argon2Config::default()
    };
    let pool = PasswordHasher::new(&config).expect("parameters");
    let started = Instant::now();
    let tasks: Vec<_> = (0..cores)
        .map(|_| {
            let pool = pool.clone();
            let hash = hash.clone();
            tokio::spawn(async move {
                let mut done = 0_u32;
                while started.elapsed().as_secs_f64() < seconds {
                    assert!(pool
                        .verify("correct horse battery staple".into(), Some(hash.clone()))
                        .await
                        .unwrap());
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0_u32;
    for task in tasks {
        total += task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "bound: {cores} cores at once: {total} verifications in {elapsed:.1} s = {:.1} verifications per second",
        f64::from(total) / elapsed
    );
}

/// The single-core timings: hash and verification medians, and cores ÷ one verification.
fn print_single_core(
    config: &Argon2Config,
    hash: &str,
    hash_ms: &[f64],
    verify_ms: &[f64],
    cores: usize,
) {
    let runs = verify_ms.len();
    let verify = verify_ms[runs / 2];
    println!(
        "argon2id m={} KiB t={} p={} ({})",
        config.memory_kib,
        config.iterations,
        config.parallelism,
        &hash[..30]
    );
    println!(
        "hash: median {:.1} ms (min {:.1}, max {:.1})",
        hash_ms[runs / 2],
        hash_ms[0],
        hash_ms[runs - 1]
    );
    println!(
        "verify: median {:.1} ms (min {:.1}, max {:.1})",
        verify,
        verify_ms[0],
        verify_ms[runs - 1]
    );
    println!(
        "one core: {cores} cores / {verify:.1} ms = {:.0} verifications per second",
        cores as f64 * 1000.0 / verify
    );
}
