//! Where the machine's CPU goes during a run, read from /proc: all cores' busy time, and the
//! CPU time of PostgreSQL (the postmaster and every backend, live or exited), Redis and this
//! tool. The tool only targets loopback, so all of them share the machine with the server: this
//! is what one change costs, and who pays for it, whatever the latency of a given run.

use std::collections::HashMap;

use serde::Serialize;

/// Linux reports CPU time in clock ticks of 1/100 s on every platform this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// One process's line of `/proc/<pid>/stat`, the fields this tool reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStat {
    pub comm: String,
    pub ppid: u32,
    /// Its own user and system time, seconds.
    pub cpu_seconds: f64,
    /// User and system time of its children that exited and were waited for, seconds.
    pub children_cpu_seconds: f64,
}

impl ProcStat {
    pub fn read(pid: &str) -> anyhow::Result<ProcStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        ProcStat::parse(&text).ok_or_else(|| anyhow::anyhow!("unreadable /proc/{pid}/stat"))
    }

    /// `pid (comm) state ppid …`: the command name may hold spaces and parentheses, so it runs
    /// to the last `)`. utime, stime, cutime and cstime are fields 14–17.
    fn parse(text: &str) -> Option<ProcStat> {
        let (head, rest) = text.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_owned();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
        Some(ProcStat {
            comm,
            ppid: fields.get(1)?.parse().ok()?,
            cpu_seconds: (ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND,
            children_cpu_seconds: (ticks(13)? + ticks(14)?) as f64 / TICKS_PER_SECOND,
        })
    }
}

/// CPU seconds spent so far, machine-wide and by the processes sharing it with the server.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuSample {
    /// All cores' busy time (user, nice, system, irq, softirq, steal).
    pub busy: f64,
    /// All cores' time, idle included.
    pub total: f64,
    pub postgres: f64,
    pub redis: f64,
    pub load_tool: f64,
}

impl CpuSample {
    /// Reads /proc now. A process that vanishes while it is read is skipped.
    pub fn now() -> anyhow::Result<CpuSample> {
        let (busy, total) = parse_cpu_line(&std::fs::read_to_string("/proc/stat")?)
            .ok_or_else(|| anyhow::anyhow!("no cpu line in /proc/stat"))?;
        let mut processes: HashMap<u32, ProcStat> = HashMap::new();
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = ProcStat::read(&pid.to_string()) {
                processes.insert(pid, stat);
            }
        }
        Ok(CpuSample {
            busy,
            total,
            postgres: postgres_seconds(&processes),
            redis: processes
                .values()
                .filter(|p| p.comm == "redis-server")
                .map(|p| p.cpu_seconds + p.children_cpu_seconds)
                .sum(),
            load_tool: ProcStat::read("self")?.cpu_seconds,
        })
    }
}

/// PostgreSQL's CPU time: each postmaster's own and that of its exited children (backends end
/// when their connection closes, and the postmaster waits for them), plus its live children's.
fn postgres_seconds(processes: &HashMap<u32, ProcStat>) -> f64 {
    let is_postgres = |pid: &u32| processes.get(pid).is_some_and(|p| p.comm == "postgres");
    let postmasters: Vec<u32> = processes
        .iter()
        .filter(|(pid, p)| is_postgres(pid) && !is_postgres(&p.ppid))
        .map(|(pid, _)| *pid)
        .collect();
    processes
        .iter()
        .map(|(pid, p)| {
            if postmasters.contains(pid) {
                p.cpu_seconds + p.children_cpu_seconds
            } else if p.comm == "postgres" && postmasters.contains(&p.ppid) {
                p.cpu_seconds
            } else {
                0.0
            }
        })
        .sum()
}

/// Busy and total seconds of all cores from the first line of /proc/stat
/// (`cpu user nice system idle iowait irq softirq steal …`, in ticks).
fn parse_cpu_line(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = ticks[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some((
        busy as f64 / TICKS_PER_SECOND,
        (busy + idle + iowait) as f64 / TICKS_PER_SECOND,
    ))
}

/// How the machine spent a stretch of a run, per change written in it.
#[derive(Debug, Clone, Serialize)]
pub struct MachineFigures {
    /// Share of all cores' time that was busy, 0–1.
    pub busy_share: f64,
    pub cores: f64,
    /// CPU milliseconds per change: the server's, PostgreSQL's, Redis's, this tool's, and the
    /// rest of the machine's busy time.
    pub server_ms_per_change: f64,
    pub postgres_ms_per_change: f64,
    pub redis_ms_per_change: f64,
    pub load_tool_ms_per_change: f64,
    pub other_ms_per_change: f64,
}

impl MachineFigures {
    /// From `from` to `to`, in which the server spent `server_seconds` and `changes` were
    /// written over `wall_seconds`.
    pub fn between(
        from: &CpuSample,
        to: &CpuSample,
        server_seconds: f64,
        changes: u64,
        wall_seconds: f64,
    ) -> MachineFigures {
        let per_change = |seconds: f64| seconds.max(0.0) * 1000.0 / changes.max(1) as f64;
        let busy = to.busy - from.busy;
        let postgres = to.postgres - from.postgres;
        let redis = to.redis - from.redis;
        let load_tool = to.load_tool - from.load_tool;
        let total = (to.total - from.total).max(0.01);
        MachineFigures {
            busy_share: (busy / total).clamp(0.0, 1.0),
            cores: (total / wall_seconds.max(0.001)).round(),
            server_ms_per_change: per_change(server_seconds),
            postgres_ms_per_change: per_change(postgres),
            redis_ms_per_change: per_change(redis),
            load_tool_ms_per_change: per_change(load_tool),
            other_ms_per_change: per_change(busy - server_seconds - postgres - redis - load_tool),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let line =
            "4062 (postgres: (x) y) S 4061 4062 4062 0 -1 4194304 10 0 0 0 250 130 7 3 20 0 1 0";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                comm: "postgres: (x) y".into(),
                ppid: 4061,
                cpu_seconds: 3.8,
                children_cpu_seconds: 0.1,
            })
        );
        assert_eq!(ProcStat::parse("4062 postgres S"), None);
    }

    #[test]
    fn postgres_counts_the_postmaster_its_exited_and_live_backends_only() {
        let proc = |comm: &str, ppid: u32, cpu: f64, children: f64| ProcStat {
            comm: comm.into(),
            ppid,
            cpu_seconds: cpu,
            children_cpu_seconds: children,
        };
        let processes = HashMap::from([
            (1, proc("init", 0, 9.0, 90.0)),
            (10, proc("postgres", 1, 1.0, 5.0)),
            (11, proc("postgres", 10, 2.0, 0.0)),
            (12, proc("postgres", 10, 3.0, 0.0)),
            (20, proc("customer360", 1, 7.0, 0.0)),
        ]);
        assert_eq!(postgres_seconds(&processes), 11.0);
    }

    #[test]
    fn busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 10 50 800 40 5 5 0 0 0\ncpu0 50 5 25 400 20 2 3 0 0 0\n";
        assert_eq!(parse_cpu_line(stat), Some((1.7, 10.1)));
        let figures = MachineFigures::between(
            &CpuSample::default(),
            &CpuSample {
                busy: 1.5,
                total: 2.0,
                postgres: 0.6,
                redis: 0.0,
                load_tool: 0.2,
            },
            0.5,
            100,
            1.0,
        );
        assert_eq!(figures.busy_share, 0.75);
        assert_eq!(figures.cores, 2.0);
        assert!((figures.other_ms_per_change - 2.0).abs() < 1e-9);
        assert!((figures.postgres_ms_per_change - 6.0).abs() < 1e-9);
    }

    #[test]
    fn this_machine_reads() {
        let sample = CpuSample::now().expect("/proc readable");
        assert!(sample.total >= sample.busy && sample.busy > 0.0);
    }
}
