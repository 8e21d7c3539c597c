//! The server process under test, read from /proc: resident memory and CPU time.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::machine::ProcStat;

#[derive(Debug, Clone)]
pub struct Server {
    pub pid: u32,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

impl Server {
    /// The given pid, or the one process running `customer360 serve` or `customer360 demo`.
    pub fn find(pid: Option<u32>) -> anyhow::Result<Server> {
        if let Some(pid) = pid {
            let server = Server { pid };
            server.sample()?;
            return Ok(server);
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_server = args.first().is_some_and(|a| a.ends_with(b"customer360"))
                && args.iter().any(|a| *a == b"serve" || *a == b"demo");
            if is_server {
                found.push(pid);
            }
        }
        match found.as_slice() {
            [pid] => Ok(Server { pid: *pid }),
            [] => anyhow::bail!(
                "no `customer360 serve` process found; start the server or pass --server-pid"
            ),
            many => anyhow::bail!("several customer360 servers run ({many:?}); pass --server-pid"),
        }
    }

    pub fn sample(&self) -> anyhow::Result<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{}/status", self.pid))?;
        Ok(Sample {
            rss_bytes: rss_kb * 1024,
            cpu_seconds: ProcStat::read(&self.pid.to_string())?.cpu_seconds,
        })
    }
}

/// Samples the server once a second while the run goes, for the memory peak and the plot.
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    pub fn start(server: Server) -> Sampler {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = &mut stopped => return samples,
                    _ = tick.tick() => {
                        if let Ok(s) = server.sample() {
                            samples.push(s);
                        }
                    }
                }
            }
        });
        Sampler { stop, task }
    }

    /// Every sample taken, one a second.
    pub async fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}
