//! Shared helpers for Skua's benchmarks: latency percentiles, medians over rounds and their
//! report cells, machine facts, and writing result files (JSON + markdown) under
//! `results/<date>-<commit>/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod plot;

/// Percentile of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The median of `values` (the mean of the middle two for an even count); None when empty.
/// NaNs are not expected: every figure bench summarises is a count, a rate or a duration.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        count if count % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// The median of a figure over rounds (one entry per round), of the rounds that have it.
pub fn median_of_rounds(per_round: &[Option<f64>]) -> Option<f64> {
    median(&per_round.iter().flatten().copied().collect::<Vec<f64>>())
}

/// One table cell for a figure over rounds (one entry per round, None where a round has none):
/// the value alone for a single round; for several, the median and, in brackets, the lowest and
/// highest (`1.87 [1.14–2.06]`), so a report shows how far the machine's rounds spread, not only
/// where their middle lies, followed by `(K of N)` when only K of the N rounds have the figure.
pub fn median_cell(per_round: &[Option<f64>], decimals: usize) -> String {
    let mut present: Vec<f64> = per_round.iter().flatten().copied().collect();
    present.sort_by(f64::total_cmp);
    let Some(middle) = median(&present) else { return "–".to_string() };
    let (low, high) = (present[0], present[present.len() - 1]);
    let mut cell = if present.len() == 1 {
        format!("{middle:.decimals$}")
    } else {
        format!("{middle:.decimals$} [{low:.decimals$}–{high:.decimals$}]")
    };
    if present.len() < per_round.len() {
        let _ = write!(cell, " ({} of {})", present.len(), per_round.len());
    }
    cell
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `GET /metrics` from a netd's metrics endpoint at `address` (each step bounded by `timeout`):
/// the exposition text, or an error for anything but a 200 answer.
pub fn scrape_metrics(address: std::net::SocketAddr, timeout: std::time::Duration) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other(format!("{address} answered no HTTP response")));
    };
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(std::io::Error::other(format!("{address} answered {status:?}")));
    }
    Ok(body.to_string())
}

/// Facts about this run: commit, date, kernel, CPU, load.
#[derive(Debug)]
pub struct RunFacts {
    pub commit: String,
    pub date: String,
    pub kernel: String,
    pub cpu: String,
    pub cores: usize,
    /// The system's TCP congestion control (`net.ipv4.tcp_congestion_control`), which every
    /// connection of a run gets, loopback ones included. It moves loopback read rates: with
    /// `bbr` (paced sends) Skua's hot reads ran ~14 % slower here than with `cubic`
    /// (`results/2026-12-05-fetch-ahead/congestion-control/`).
    pub tcp_congestion_control: String,
}

impl RunFacts {
    pub fn collect() -> RunFacts {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("model name"))
                    .map(|line| line.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_default();
        RunFacts {
            commit: command_output("git", &["rev-parse", "--short", "HEAD"]),
            date: command_output("date", &["-u", "+%Y-%m-%d"]),
            kernel: command_output("uname", &["-r"]),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |count| count.get()),
            tcp_congestion_control: std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string()),
        }
    }

    pub fn json(&self) -> String {
        format!(
            "{{\"commit\": {}, \"date\": {}, \"kernel\": {}, \"cpu\": {}, \"cores\": {}, \"tcpCongestionControl\": {}}}",
            json_string(&self.commit),
            json_string(&self.date),
            json_string(&self.kernel),
            json_string(&self.cpu),
            self.cores,
            json_string(&self.tcp_congestion_control)
        )
    }

    /// `results/<date>-<commit>/` under the workspace root.
    pub fn results_dir(&self, workspace: &Path) -> PathBuf {
        workspace.join("results").join(format!("{}-{}", self.date, self.commit))
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other if (other as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", other as u32);
            }
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_json() {
        let samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&samples, 0.5), 5.0);
        assert_eq!(percentile(&samples, 0.99), 10.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(json_string("a\"b\n"), "\"a\\\"b\\n\"");
    }

    /// Serves one connection with `answer`, returning the request it read.
    fn answer_once(answer: &'static str) -> (std::net::SocketAddr, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = [0u8; 1024];
            let read = stream.read(&mut request).expect("read");
            stream.write_all(answer.as_bytes()).expect("write");
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        (address, server)
    }

    #[test]
    fn a_scrape_returns_the_body_of_a_200_and_refuses_anything_else() {
        let timeout = std::time::Duration::from_secs(5);
        let body = "# TYPE skua_up gauge\nskua_up 1\n";
        let ok: &'static str =
            Box::leak(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_boxed_str());
        let (address, server) = answer_once(ok);
        assert_eq!(scrape_metrics(address, timeout).expect("scraped"), body);
        assert!(server.join().expect("server").starts_with("GET /metrics HTTP/1.0\r\n"));
        let (address, server) = answer_once("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let refused = scrape_metrics(address, timeout).expect_err("a 404 is no scrape");
        assert!(refused.to_string().contains("404"), "{refused}");
        server.join().expect("server");
    }

    #[test]
    fn the_median_takes_the_middle_and_a_cell_shows_the_spread_of_several_rounds() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[2.59, 1.18, 2.19]), Some(2.19));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median_of_rounds(&[Some(4.0), None, Some(1.0), Some(3.0)]), Some(3.0));
        assert_eq!(median_of_rounds(&[None]), None);
        assert_eq!(median_cell(&[], 2), "–");
        assert_eq!(median_cell(&[None], 2), "–");
        assert_eq!(median_cell(&[Some(1.5)], 2), "1.50");
        assert_eq!(median_cell(&[Some(2.59), Some(1.18), Some(2.19)], 2), "2.19 [1.18–2.59]");
        assert_eq!(median_cell(&[Some(310.0), Some(290.2)], 1), "300.1 [290.2–310.0]");
        // A round without the figure is left out and said so.
        assert_eq!(median_cell(&[Some(2.0), None, Some(1.0)], 2), "1.50 [1.00–2.00] (2 of 3)");
        assert_eq!(median_cell(&[None, Some(108.5)], 1), "108.5 (1 of 2)");
        assert_eq!(median_cell(&[None, None], 1), "–");
    }

    #[test]
    fn run_facts_name_the_congestion_control() {
        let facts = RunFacts::collect();
        let expected = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control").expect("a Linux machine");
        assert_eq!(facts.tcp_congestion_control, expected.trim());
        let json: serde_json::Value = serde_json::from_str(&facts.json()).expect("valid JSON");
        assert_eq!(json["tcpCongestionControl"], expected.trim());
        assert_eq!(json["cores"], facts.cores);
    }
}
