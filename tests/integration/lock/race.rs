//! Several real processes racing for one lock: exactly one winner.

use super::*;

const RACER_ENV: &str = "ENTWURF_LOCK_RACER_DIR";
const RACERS: usize = 8;
const ROUNDS: usize = 5;

/// Not a test on its own: the body of one racing process, started by the race tests
/// below with `RACER_ENV` set. Says `<dir>/ready-<pid>`, waits for `<dir>/go`, acquires once, reports, then stays
/// alive until `<dir>/done` so its pid stays live while the others judge its claim.
#[test]
#[ignore = "helper process for the race tests"]
fn lock_racer_process() {
    let Some(dir) = std::env::var_os(RACER_ENV).map(PathBuf::from) else {
        eprintln!("lock_racer_process only runs as a child of the race tests");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    fs::write(dir.join(format!("ready-{}", std::process::id())), "").expect("ready");
    while !dir.join("go").exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_micros(200));
    }
    match acquire(&dir.join("locks"), &gid()) {
        Ok(claim) => println!("RACER-RESULT WIN {}", claim.nonce()),
        Err(AcquireError::Conflict(c)) => println!("RACER-RESULT CONFLICT {}", c.message),
        Err(e) => println!("RACER-RESULT IO {e} ({:?})", std::error::Error::source(&e)),
    }
    while !dir.join("done").exists() {
        assert!(Instant::now() < deadline, "no done signal");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Kills and reaps every racer on the way out, even when an assertion fails.
struct Racers(Vec<Child>);

impl Drop for Racers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs one race in `dir` and returns each racer's result line.
fn race(dir: &Path) -> Vec<String> {
    let exe = std::env::current_exe().expect("current exe");
    let mut racers = Racers(Vec::new());
    let (tx, rx) = mpsc::channel();
    for i in 0..RACERS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "lock::race::lock_racer_process",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RACER_ENV, dir)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(dir.join(format!("racer{i}.stderr"))).expect("stderr file"))
            .spawn()
            .expect("spawn racer");
        let stdout = child.stdout.take().expect("stdout");
        racers.0.push(child);
        let tx = tx.clone();
        std::thread::spawn(move || {
            // Keep draining after the result line: a closed pipe would make the racer's
            // own test harness fail when it prints its summary.
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest prints "test lock_racer_process ... " on the same line.
                if let (false, Some(at)) = (sent, line.find("RACER-RESULT ")) {
                    sent = tx.send(line[at..].to_owned()).is_ok();
                }
            }
            if !sent {
                let _ = tx.send("RACER-RESULT NONE".to_owned());
            }
        });
    }
    // Start them all at once: wait until every racer is up and polling for "go".
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_dir(dir)
        .expect("read_dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("ready-"))
        })
        .count()
        < RACERS
    {
        assert!(Instant::now() < deadline, "racers did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::write(dir.join("go"), "").expect("go");
    let results: Vec<String> = (0..RACERS)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(30))
                .expect("racer result in time")
        })
        .collect();
    // Every racer has decided; the winner is still alive. Check the disk now.
    fs::write(dir.join("done"), "").expect("done");
    for (i, child) in racers.0.iter_mut().enumerate() {
        let status = child.wait().expect("wait racer");
        let stderr = fs::read_to_string(dir.join(format!("racer{i}.stderr"))).unwrap_or_default();
        assert!(status.success(), "racer {i} failed ({status}): {stderr}");
    }
    results
}

fn assert_one_winner(dir: &Path, results: &[String]) {
    let wins: Vec<&String> = results.iter().filter(|r| r.contains(" WIN ")).collect();
    let conflicts = results.iter().filter(|r| r.contains(" CONFLICT ")).count();
    assert_eq!(wins.len(), 1, "{results:#?}");
    assert_eq!(conflicts, RACERS - 1, "{results:#?}");
    let nonce = wins[0].rsplit(' ').next().expect("nonce");
    let locks = dir.join("locks");
    assert_eq!(dir_names(&locks), [format!("{GID}.lock")], "{results:#?}");
    let on_disk = fs::read(lock_path(&locks, &gid())).expect("read lock");
    let claim = parse_claim(&on_disk, &gid(), &lock_path(&locks, &gid())).expect("parse");
    assert_eq!(claim.nonce(), nonce);
}

/// How the losers lost, for the test log: proof the race was contended.
fn summary(results: &[String]) -> String {
    let count = |needle: &str| results.iter().filter(|r| r.contains(needle)).count();
    format!(
        "{} win, {} held, {} unreadable (mid-write), {} reclaim in progress, {} replaced, {} lost race",
        count(" WIN "),
        count("running on this host"),
        count("unreadable"),
        count("reclaim in progress"),
        count("replaced a stale claim"),
        count("created it first"),
    )
}

#[test]
fn racing_processes_for_a_free_lock_have_exactly_one_winner() {
    for round in 0..ROUNDS {
        let tmp = tempfile::tempdir().expect("tempdir");
        let results = race(tmp.path());
        assert_one_winner(tmp.path(), &results);
        eprintln!("free lock, round {round}: {}", summary(&results));
    }
}

#[test]
fn racing_processes_for_a_stale_lock_have_exactly_one_winner() {
    for round in 0..ROUNDS {
        let tmp = tempfile::tempdir().expect("tempdir");
        let locks = tmp.path().join("locks");
        fs::create_dir_all(&locks).expect("mkdir");
        let path = lock_path(&locks, &gid());
        let stale = claim_line(&path, GID, dead_pid(), &our_hostname(), "0123456789abcdef");
        fs::write(&path, stale).expect("write stale");
        let results = race(tmp.path());
        assert_one_winner(tmp.path(), &results);
        assert!(!reclaim_marker_path(&path).exists());
        eprintln!("stale lock, round {round}: {}", summary(&results));
    }
}

/// The soak: `ENTWURF_LOCK_SOAK_ROUNDS` rounds (default 1000) of 8 processes racing for
/// one lock, alternating a free lock and a provably stale one; exactly one winner every
/// round. Ignored by default (minutes, not seconds); `scripts/soak.sh` runs it:
/// `ENTWURF_LOCK_SOAK_ROUNDS=1000 cargo test --release --test integration -- --ignored --exact lock::race::racing_processes_soak --nocapture`.
#[test]
#[ignore = "soak: run by scripts/soak.sh"]
fn racing_processes_soak() {
    let rounds: usize = std::env::var("ENTWURF_LOCK_SOAK_ROUNDS")
        .ok()
        .map_or(1000, |r| {
            r.parse().expect("ENTWURF_LOCK_SOAK_ROUNDS is a number")
        });
    let started = Instant::now();
    let mut contended = 0;
    for round in 0..rounds {
        let tmp = tempfile::tempdir().expect("tempdir");
        let locks = tmp.path().join("locks");
        let path = lock_path(&locks, &gid());
        if round % 2 == 1 {
            fs::create_dir_all(&locks).expect("mkdir");
            let stale = claim_line(&path, GID, dead_pid(), &our_hostname(), "0123456789abcdef");
            fs::write(&path, stale).expect("write stale");
        }
        let results = race(tmp.path());
        assert_one_winner(tmp.path(), &results);
        assert!(!reclaim_marker_path(&path).exists(), "round {round}");
        // Contended: at least one loser saw the lock mid-write or mid-reclaim, or lost the
        // create race itself, rather than finding a finished claim.
        if results.iter().any(|r| {
            r.contains("unreadable")
                || r.contains("reclaim in progress")
                || r.contains("created it first")
        }) {
            contended += 1;
        }
        if (round + 1) % 100 == 0 {
            eprintln!(
                "lock soak: {} rounds, {:?}: {}",
                round + 1,
                started.elapsed(),
                summary(&results)
            );
        }
    }
    eprintln!(
        "lock soak: {rounds} rounds x {RACERS} processes, exactly one winner every round \
         ({contended} rounds closely contended) in {:?}",
        started.elapsed()
    );
}
