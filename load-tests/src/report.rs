//! The figures of a run: printed, written as JSON beside the SVG plot, and checked against
//! the targets of the run's mode (the exit status says whether they all held).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::collector::Outcome;
use crate::machine::{CpuSample, MachineFigures};
use crate::server::Sample;
use crate::session::{SessionStats, Verification};
use crate::writer::Written;
use crate::{Args, Mode};

/// What the run measured besides the collector's matching.
pub struct Inputs {
    pub connected: usize,
    pub connect_seconds: f64,
    pub write_seconds: f64,
    pub baseline: Sample,
    pub idle: Sample,
    pub busy: Sample,
    /// The machine's CPU when `idle` and `busy` were taken…
    pub machine: (CpuSample, CpuSample),
    /// …and the seconds between them.
    pub measured_seconds: f64,
    pub samples: Vec<Sample>,
    pub written: Written,
    pub sessions: SessionStats,
    pub verification: Option<Verification>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Deliveries {
    /// (write, session) pairs that had to arrive.
    pub expected: u64,
    pub delivered_in_time: u64,
    /// Expected but not received within the loss timeout.
    pub lost: u64,
    pub covered_by_snapshot: u64,
    /// Every delta frame the sessions received (derived updates too), per second of writing.
    pub delta_frames: u64,
    pub delta_frames_per_second: f64,
    pub negative_clock: u64,
    pub missing_examples: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ServerFigures {
    pub pid: u32,
    pub rss_baseline_mib: f64,
    pub rss_idle_mib: f64,
    pub rss_peak_mib: f64,
    pub rss_end_mib: f64,
    /// Idle memory per connected session beyond the baseline.
    pub idle_kib_per_session: f64,
    /// CPU time the server spent from the first write to the last delivery.
    pub cpu_seconds: f64,
    pub delta_frames_per_cpu_second: f64,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub value: f64,
    pub limit: f64,
    /// False when the figure is over nothing (no delivery timed, no session connected).
    pub measured: bool,
    pub held: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub finished_at: String,
    pub args: Args,
    pub sessions_planned: usize,
    pub sessions_connected: usize,
    pub connect_seconds: f64,
    pub write_seconds: f64,
    pub writes: Written,
    pub no_op_writes: u64,
    pub latency: Latency,
    pub deliveries: Deliveries,
    pub server: ServerFigures,
    /// From the first write to the last delivery, like the server's CPU time.
    pub machine: MachineFigures,
    pub session_stats: SessionStats,
    pub verification: Option<Verification>,
    pub targets: Vec<Target>,
}

const MIB: f64 = 1_048_576.0;

impl Report {
    pub fn new(args: &Args, i: Inputs, o: &Outcome) -> Report {
        let ms = |us: u64| us as f64 / 1000.0;
        let latency = Latency {
            p50_ms: ms(o.latency.value_at_quantile(0.5)),
            p90_ms: ms(o.latency.value_at_quantile(0.9)),
            p99_ms: ms(o.latency.value_at_quantile(0.99)),
            p999_ms: ms(o.latency.value_at_quantile(0.999)),
            max_ms: ms(o.latency.max()),
            mean_ms: o.latency.mean() / 1000.0,
        };
        let cpu_seconds = (i.busy.cpu_seconds - i.idle.cpu_seconds).max(0.01);
        let deliveries = Deliveries {
            expected: o.expected,
            delivered_in_time: o.delivered,
            lost: o.lost(),
            covered_by_snapshot: o.covered_by_snapshot,
            delta_frames: o.delta_frames,
            delta_frames_per_second: o.delta_frames as f64 / i.write_seconds.max(0.001),
            negative_clock: o.negative_clock,
            missing_examples: o.missing_examples.clone(),
        };
        let peak = i
            .samples
            .iter()
            .map(|s| s.rss_bytes)
            .chain([i.busy.rss_bytes, i.idle.rss_bytes])
            .max()
            .unwrap_or(0);
        let server = ServerFigures {
            pid: 0,
            rss_baseline_mib: i.baseline.rss_bytes as f64 / MIB,
            rss_idle_mib: i.idle.rss_bytes as f64 / MIB,
            rss_peak_mib: peak as f64 / MIB,
            rss_end_mib: i.busy.rss_bytes as f64 / MIB,
            idle_kib_per_session: (i.idle.rss_bytes.saturating_sub(i.baseline.rss_bytes)) as f64
                / 1024.0
                / i.connected.max(1) as f64,
            cpu_seconds,
            delta_frames_per_cpu_second: o.delta_frames as f64 / cpu_seconds,
        };
        let machine = MachineFigures::between(
            &i.machine.0,
            &i.machine.1,
            cpu_seconds,
            i.written.written,
            i.measured_seconds,
        );
        let mut targets = Vec::new();
        // A figure over nothing (no delivery timed, no session connected) holds no target.
        let timed = !o.latency.is_empty();
        let connected = i.connected > 0;
        let mut target = |name: &str, value: f64, limit: f64, at_most: bool, measured: bool| {
            targets.push(Target {
                name: name.to_owned(),
                value,
                limit,
                measured,
                held: measured
                    && if at_most {
                        value <= limit
                    } else {
                        value >= limit
                    },
            });
        };
        target(
            "sessions connected",
            i.connected as f64,
            args.sessions as f64,
            false,
            true,
        );
        target(
            "lost deliveries",
            o.lost() as f64,
            0.0,
            true,
            o.expected > 0,
        );
        target("writes failed", i.written.failed as f64, 0.0, true, true);
        match args.mode {
            Mode::Propagation => {
                target("p50 latency, ms", latency.p50_ms, 10.0, true, timed);
                target("p99 latency, ms", latency.p99_ms, 100.0, true, timed);
                target(
                    "server peak RSS, MiB",
                    server.rss_peak_mib,
                    400.0,
                    true,
                    connected,
                );
                target(
                    "idle KiB per session",
                    server.idle_kib_per_session,
                    8.0,
                    true,
                    connected,
                );
            }
            Mode::Fanout => {
                target("p99 latency, ms", latency.p99_ms, 100.0, true, timed);
                target(
                    "deliveries per server CPU-second",
                    server.delta_frames_per_cpu_second,
                    args.per_cpu_second_target,
                    false,
                    connected,
                );
            }
            Mode::Reconnect => {
                let mismatching = i
                    .verification
                    .as_ref()
                    .map_or(f64::MAX, |v| v.mismatching as f64);
                target(
                    "sessions not holding the database's view",
                    mismatching,
                    0.0,
                    true,
                    true,
                );
            }
            Mode::Slow => {
                target(
                    "p99 latency of reading sessions, ms",
                    latency.p99_ms,
                    100.0,
                    true,
                    timed,
                );
                target(
                    "server peak RSS, MiB",
                    server.rss_peak_mib,
                    400.0,
                    true,
                    connected,
                );
            }
        }
        Report {
            mode: args.mode,
            finished_at: chrono::Utc::now().to_rfc3339(),
            args: args.clone(),
            sessions_planned: args.sessions,
            sessions_connected: i.connected,
            connect_seconds: i.connect_seconds,
            write_seconds: i.write_seconds,
            no_op_writes: o.no_op_writes,
            writes: i.written,
            latency,
            deliveries,
            server,
            machine,
            session_stats: i.sessions,
            verification: i.verification,
            targets,
        }
    }

    pub fn with_pid(mut self, pid: u32) -> Report {
        self.server.pid = pid;
        self
    }

    pub fn print(&self) {
        let l = &self.latency;
        let d = &self.deliveries;
        let s = &self.server;
        println!("mode            {:?}", self.mode);
        println!(
            "sessions        {}/{} connected in {:.1} s",
            self.sessions_connected, self.sessions_planned, self.connect_seconds
        );
        println!(
            "writes          {} in {:.1} s ({} changed nothing, {} failed, {} behind schedule; commit p50 {:.1} ms, p99 {:.1} ms)",
            self.writes.written,
            self.write_seconds,
            self.no_op_writes,
            self.writes.failed,
            self.writes.behind_schedule,
            self.writes.write_p50_us as f64 / 1000.0,
            self.writes.write_p99_us as f64 / 1000.0
        );
        println!(
            "latency         p50 {:.2} ms · p90 {:.2} ms · p99 {:.2} ms · p99.9 {:.2} ms · max {:.2} ms",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
        );
        println!(
            "deliveries      {} expected, {} in time, {} lost, {} covered by a fresh snapshot; {} delta frames ({:.0}/s)",
            d.expected,
            d.delivered_in_time,
            d.lost,
            d.covered_by_snapshot,
            d.delta_frames,
            d.delta_frames_per_second
        );
        println!(
            "server          RSS {:.0} MiB before, {:.0} idle ({:.2} KiB/session), {:.0} peak, {:.0} end; CPU {:.1} s → {:.0} delta frames per CPU-second",
            s.rss_baseline_mib,
            s.rss_idle_mib,
            s.idle_kib_per_session,
            s.rss_peak_mib,
            s.rss_end_mib,
            s.cpu_seconds,
            s.delta_frames_per_cpu_second
        );
        let m = &self.machine;
        println!(
            "machine         {:.0} % of {} cores busy; CPU per change: server {:.2} ms, PostgreSQL {:.2} ms, Redis {:.2} ms, load tool {:.2} ms, rest {:.2} ms",
            m.busy_share * 100.0,
            m.cores,
            m.server_ms_per_change,
            m.postgres_ms_per_change,
            m.redis_ms_per_change,
            m.load_tool_ms_per_change,
            m.other_ms_per_change
        );
        for e in &d.missing_examples {
            println!("  lost: {e}");
        }
        let st = &self.session_stats;
        println!(
            "sessions        {} reconnects ({} resumed with since), {} gaps, {} subscriptions retried, {} slow-consumer notices, {} other error frames, {} failed",
            st.reconnects,
            st.resumed,
            st.gaps,
            st.retried_subscriptions,
            st.slow_consumer_notices,
            st.error_frames,
            st.failed
        );
        for e in &st.first_errors {
            println!("  {e}");
        }
        if let Some(v) = &self.verification {
            println!(
                "verification    {}/{} sessions hold exactly the database's view",
                v.matching, v.sessions_checked
            );
            for e in &v.examples {
                println!("  {e}");
            }
        }
        for t in &self.targets {
            println!(
                "target          {:<45} {:>12.2} {} {:<10} {}",
                t.name,
                t.value,
                match (t.measured, t.held) {
                    (false, _) => "NO DATA",
                    (true, true) => "within",
                    (true, false) => "MISSES",
                },
                t.limit,
                if t.held { "ok" } else { "FAIL" }
            );
        }
    }

    /// Writes `<mode>-<time>.json` and `.svg` into `dir`.
    pub fn write(
        &self,
        dir: &Path,
        outcome: &Outcome,
        samples: &[Sample],
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let stem = format!(
            "{}-{}",
            serde_json::to_value(self.mode)?.as_str().unwrap_or("run"),
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        let json = dir.join(format!("{stem}.json"));
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)?;
        let svg = dir.join(format!("{stem}.svg"));
        let title = format!(
            "{:?}: {} sessions, {} customers, {} changes at {}/s — p50 {:.1} ms, p99 {:.1} ms, lost {}",
            self.mode,
            self.sessions_connected,
            self.args.customers,
            self.writes.written,
            self.args.rate,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.deliveries.lost
        );
        crate::plot::draw(&svg, &title, outcome, samples)?;
        Ok((json, svg))
    }

    /// Ok when every target held; the failing ones otherwise.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let failed: Vec<&str> = self
            .targets
            .iter()
            .filter(|t| !t.held)
            .map(|t| t.name.as_str())
            .collect();
        anyhow::ensure!(failed.is_empty(), "targets missed: {}", failed.join(", "));
        Ok(())
    }
}
