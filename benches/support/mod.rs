//! What the benchmarks share: their command line, and a throw-away PostgreSQL database.

/// `cargo bench` passes `--bench`; `cargo test` runs bench targets without it and must stay fast.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The value of `--name N`, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// A database created for one run on the server `FEERECON_BENCH_POSTGRES_URL` (or
/// `FEERECON_TEST_POSTGRES_URL`) names, dropped by [`Throwaway::drop_db`].
pub struct Throwaway {
    admin: String,
    name: String,
    pub url: String,
}

pub async fn postgres() -> Option<Throwaway> {
    let admin = std::env::var("FEERECON_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("FEERECON_TEST_POSTGRES_URL"))
        .ok()?;
    sqlx::any::install_default_drivers();
    let name = format!("feerecon_bench_{}", std::process::id());
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .expect("create");
    let url = match admin.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{name}", &admin[..i]),
        _ => format!("{admin}/{name}"),
    };
    Some(Throwaway { admin, name, url })
}

impl Throwaway {
    pub async fn drop_db(self) {
        let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.admin)
            .await
            .expect("connect");
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut c)
            .await
            .expect("drop");
    }
}

/// Busy and total CPU time of the whole machine so far, in clock ticks (Linux `/proc/stat`), so
/// a run can report the CPU each unit of work cost, which varies far less between runs than
/// wall-clock throughput on a shared machine.
#[allow(dead_code)]
pub fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// CPU time, in clock ticks, of this process (the service and the load generator) and of every
/// PostgreSQL server process: what the work itself cost, unlike [`cpu_ticks`] not raised by
/// anything else the machine runs meanwhile. Returned in the same `(busy, total)` shape.
#[allow(dead_code)]
pub fn own_ticks() -> Option<(u64, u64)> {
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the `(comm)` field,
    // which may itself hold spaces.
    fn ticks(stat: &str) -> Option<(String, u64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
        let utime: u64 = rest.get(11)?.parse().ok()?;
        let stime: u64 = rest.get(12)?.parse().ok()?;
        Some((comm, utime + stime))
    }
    let own = ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?.1;
    let mut postgres = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Some((comm, t)) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| ticks(&s))
        {
            if comm == "postgres" {
                postgres += t;
            }
        }
    }
    Some((own + postgres, 0))
}

/// Machine CPU milliseconds per unit of work between two [`cpu_ticks`] readings.
#[allow(dead_code)]
pub fn cpu_ms_per(before: Option<(u64, u64)>, after: Option<(u64, u64)>, units: usize) -> String {
    match (before, after) {
        (Some((b0, _)), Some((b1, _))) if units > 0 => {
            // Clock ticks are 1/100 s on Linux.
            format!("{:.3}", (b1 - b0) as f64 * 10.0 / units as f64)
        }
        _ => "n/a".into(),
    }
}
