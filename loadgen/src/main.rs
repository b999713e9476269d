//! `loadgen`, Skua's OpenMessaging-style load generator, for any Kafka-compatible broker.
//!
//! Owns: the command line, the run (topics, consumers, producers, warm-up, measurement, drain),
//! the 10-second progress line and final summary in OMB's format, and the JSON result in OMB
//! `TestResult` field names plus run metadata. Must not know any broker's internals: it speaks
//! only the Kafka protocol, through `driver.rs`.

mod driver;
mod native;
mod native_consumer;
mod stats;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

use stats::{LagSample, Percentiles, Recorder, TestResult, Window};
use workload::Workload;

/// Seconds between progress lines (OMB prints every 10 s).
const PROGRESS_SECONDS: u64 = 10;
/// How long consumers may take to get their partitions before the run fails.
const ASSIGNMENT_WAIT_SECONDS: u64 = 60;
/// How often the drain looks at the consumers' counts (the resolution of a read-back's timing).
const DRAIN_POLL_MS: u64 = 20;

/// Load generator for Kafka-compatible brokers (Skua, Apache Kafka): OpenMessaging Benchmark
/// workloads, coordinated-omission-corrected publish and end-to-end latency, consumer lag.
///
/// Reads an OMB workload file (--workload) and/or takes its fields as flags (flags win), runs
/// producers and group consumers against the one broker address given, prints a progress line
/// every 10 s and a summary, and writes the result as JSON with OMB's `TestResult` field names.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version)]
struct Cli {
    /// Broker to load (the only address traffic goes to).
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// OMB-style workload YAML (e.g. bench/workloads/max-rate-1kb-16p.yaml).
    #[arg(long, value_name = "FILE")]
    workload: Option<PathBuf>,
    /// Where the JSON result goes.
    #[arg(long, short, default_value = "loadgen-result.json")]
    output: PathBuf,
    /// Stop producing after this many messages in total (a bound besides the duration).
    #[arg(long, default_value_t = 1_000_000_000)]
    max_messages: u64,
    /// Seconds consumers get after producers stop to catch up before the run ends.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// With a backlog written at max rate (a catch-up read): a shell command run (`sh -c`) once
    /// every producer stopped and before the consumers start, e.g. `sync; echo 3 >
    /// /proc/sys/vm/drop_caches` for a cold read. The run fails if it fails.
    #[arg(long, value_name = "SHELL COMMAND")]
    before_consume_command: Option<String>,
    /// Prefix of the topics this run creates (a run id is appended).
    #[arg(long, default_value = "loadgen")]
    topic_prefix: String,
    /// Accept brokers that advertise another host than --bootstrap's.
    #[arg(long)]
    allow_other_hosts: bool,
    /// Producer client: `rdkafka` (librdkafka, what most production clients run) or `native`
    /// (a lean Kafka-protocol producer, for when the client limits the rate; no idempotence, no
    /// compression). The result's metadata names the drivers.
    #[arg(long, default_value = "rdkafka", value_parser = ["rdkafka", "native"])]
    driver: String,
    /// Consumer client: `rdkafka` (group consumers on librdkafka) or `native` (a lean
    /// Kafka-protocol consumer, for when librdkafka's consumer limits a read: consumer i of a
    /// subscription's n reads the partitions p with p % n == i from the start, joins no group,
    /// commits nothing, reads no compressed batches).
    #[arg(long, default_value = "rdkafka", value_parser = ["rdkafka", "native"])]
    consumer_driver: String,
    /// Replication factor of the topics loadgen creates (a cluster: 3, say).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    replication_factor: i32,
    /// A config of the topics loadgen creates, KEY=VALUE (repeatable), e.g.
    /// `--topic-config min.insync.replicas=2`.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = parse_topic_config)]
    topic_configs: Vec<(String, String)>,
    /// Process ids of the brokers on this machine (repeatable): their CPU time while producing
    /// and while catching up goes into the result beside loadgen's own, so a report can tell
    /// whether the client, the broker or both filled the machine's cores.
    #[arg(long = "broker-pid", value_name = "PID")]
    broker_pids: Vec<u32>,
    /// Recorded in the result: the broker's name and version, and its durability settings.
    #[arg(long, default_value = "unknown")]
    broker_name: String,
    #[arg(long, default_value = "unknown")]
    broker_version: String,
    #[arg(long, default_value = "unknown")]
    durability: String,
    /// OMB workload fields (override the file).
    #[arg(long)]
    topics: Option<usize>,
    #[arg(long)]
    partitions_per_topic: Option<i32>,
    #[arg(long)]
    message_size: Option<usize>,
    #[arg(long)]
    producers_per_topic: Option<usize>,
    /// Messages/s over all producers; 0 = as fast as possible.
    #[arg(long)]
    producer_rate: Option<f64>,
    #[arg(long)]
    subscriptions_per_topic: Option<usize>,
    #[arg(long)]
    consumer_per_subscription: Option<usize>,
    #[arg(long)]
    consumer_backlog_size_gb: Option<f64>,
    /// NO_KEY, KEY_ROUND_ROBIN or RANDOM_NANO.
    #[arg(long)]
    key_distributor: Option<String>,
    #[arg(long)]
    test_duration_minutes: Option<f64>,
    #[arg(long)]
    warmup_duration_minutes: Option<f64>,
    /// Producer settings: acks (0, 1, all), batch.size, linger.ms, compression, idempotence.
    #[arg(long)]
    acks: Option<String>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    linger_ms: Option<u64>,
    #[arg(long)]
    compression: Option<String>,
    #[arg(long)]
    idempotence: Option<bool>,
}

fn parse_topic_config(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn workload_from(cli: &Cli) -> anyhow::Result<Workload> {
    let mut workload = match &cli.workload {
        Some(path) => Workload::from_file(path).map_err(anyhow::Error::msg)?,
        None => Workload::default(),
    };
    let mut set = |key: &str, value: Option<String>| -> anyhow::Result<()> {
        if let Some(value) = value {
            workload.set(key, &value).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    };
    set("topics", cli.topics.map(|v| v.to_string()))?;
    set("partitionsPerTopic", cli.partitions_per_topic.map(|v| v.to_string()))?;
    set("messageSize", cli.message_size.map(|v| v.to_string()))?;
    set("producersPerTopic", cli.producers_per_topic.map(|v| v.to_string()))?;
    set("producerRate", cli.producer_rate.map(|v| v.to_string()))?;
    set("subscriptionsPerTopic", cli.subscriptions_per_topic.map(|v| v.to_string()))?;
    set("consumerPerSubscription", cli.consumer_per_subscription.map(|v| v.to_string()))?;
    set("consumerBacklogSizeGB", cli.consumer_backlog_size_gb.map(|v| v.to_string()))?;
    set("keyDistributor", cli.key_distributor.clone())?;
    set("testDurationMinutes", cli.test_duration_minutes.map(|v| v.to_string()))?;
    set("warmupDurationMinutes", cli.warmup_duration_minutes.map(|v| v.to_string()))?;
    set("acks", cli.acks.clone())?;
    set("batchSize", cli.batch_size.map(|v| v.to_string()))?;
    set("lingerMs", cli.linger_ms.map(|v| v.to_string()))?;
    set("compression", cli.compression.clone())?;
    set("idempotence", cli.idempotence.map(|v| v.to_string()))?;
    workload.validate().map_err(anyhow::Error::msg)?;
    Ok(workload)
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default()
}

fn metadata(cli: &Cli, workload: &Workload, brokers: &[String]) -> BTreeMap<String, String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .map(|line| line.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mut meta = BTreeMap::new();
    meta.insert(
        "commit".into(),
        std::env::var("SKUA_COMMIT").unwrap_or_else(|_| command_output("git", &["rev-parse", "--short", "HEAD"])),
    );
    meta.insert(
        "hardware".into(),
        format!("{cpu}, {} cores", std::thread::available_parallelism().map_or(1, |n| n.get())),
    );
    meta.insert("kernel".into(), command_output("uname", &["-r"]));
    meta.insert("broker".into(), cli.broker_name.clone());
    meta.insert("brokerVersion".into(), cli.broker_version.clone());
    meta.insert("durability".into(), cli.durability.clone());
    let rdkafka = format!("rdkafka (librdkafka {})", driver::librdkafka_version());
    let native = format!("native ({})", native::version());
    let driver_text = match (cli.driver.as_str(), cli.consumer_driver.as_str()) {
        ("native", "native") => format!("producers: {native}; consumers: {native}"),
        ("native", _) => format!("producers: {native}; consumers: {rdkafka}"),
        (_, "native") => format!("producers: {rdkafka}; consumers: {native}"),
        _ => rdkafka,
    };
    meta.insert("driver".into(), driver_text);
    meta.insert("bootstrap".into(), cli.bootstrap.clone());
    meta.insert("advertisedBrokers".into(), brokers.join(","));
    meta.insert(
        "producerSettings".into(),
        format!(
            "acks={} batch.size={} linger.ms={} compression={} idempotence={}",
            workload.acks, workload.batch_size, workload.linger_ms, workload.compression, workload.idempotence
        ),
    );
    meta.insert("keyDistributor".into(), workload.key_distributor.name().into());
    meta.insert("producerRate".into(), workload.producer_rate.to_string());
    meta.insert("subscriptionsPerTopic".into(), workload.subscriptions_per_topic.to_string());
    meta.insert("testDurationMinutes".into(), workload.test_duration_minutes.to_string());
    meta.insert("warmupDurationMinutes".into(), workload.warmup_duration_minutes.to_string());
    meta.insert("consumerBacklogSizeGB".into(), workload.consumer_backlog_size_gb.to_string());
    meta
}

fn collect(recorders: &[Arc<Recorder>]) -> Window {
    let mut window = Window::default();
    for recorder in recorders {
        window.add(&recorder.take());
    }
    window
}

fn progress_line(period: &Window, seconds: f64, backlog: i64) -> String {
    let mib = |bytes: u64| bytes as f64 / seconds / 1_048_576.0;
    let publish = Percentiles::of(&period.publish_latency, 1000.0);
    let delay = Percentiles::of(&period.publish_delay, 1.0);
    let end_to_end = Percentiles::of(&period.end_to_end, 1000.0);
    format!(
        "Pub rate {:.1} msg/s / {:.1} MB/s | Pub err {:.1} err/s | Cons rate {:.1} msg/s / {:.1} MB/s | Backlog: {:.1} K | \
         Pub Latency (ms) avg: {:.1} - 50%: {:.1} - 99%: {:.1} - 99.9%: {:.1} - Max: {:.1} | \
         Pub Delay Latency (us) avg: {:.1} - 50%: {:.1} - 99%: {:.1} - 99.9%: {:.1} - Max: {:.1} | \
         E2E Latency (ms) avg: {:.1} - 50%: {:.1} - 99%: {:.1} - Max: {:.1}",
        period.published as f64 / seconds,
        mib(period.published_bytes),
        period.publish_errors as f64 / seconds,
        period.consumed as f64 / seconds,
        mib(period.consumed_bytes),
        backlog as f64 / 1000.0,
        publish.avg,
        publish.p50,
        publish.p99,
        publish.p999,
        publish.max,
        delay.avg,
        delay.p50,
        delay.p99,
        delay.p999,
        delay.max,
        end_to_end.avg,
        end_to_end.p50,
        end_to_end.p99,
        end_to_end.max,
    )
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(&cli) {
        eprintln!("loadgen: error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let workload = workload_from(cli)?;
    if cli.driver == "native" {
        native::check_supported(&workload)?;
    }
    if cli.consumer_driver == "native" {
        native_consumer::check_supported(&workload)?;
    }
    let brokers = driver::check_brokers(&cli.bootstrap, cli.allow_other_hosts)?;
    let run_id = format!("{:x}", driver::wall_micros() & 0xff_ffff_ffff);
    let topics: Vec<String> =
        (0..workload.topics).map(|index| format!("{}-{run_id}-{index}", cli.topic_prefix)).collect();
    driver::create_topics(
        &cli.bootstrap,
        &topics,
        workload.partitions_per_topic,
        cli.replication_factor,
        &cli.topic_configs,
    )?;
    eprintln!(
        "loadgen: workload {:?} against {} ({}): {} topic(s) × {} partitions, {} B messages, rate {}, {} producer(s)/topic, \
         {} subscription(s) × {} consumer(s)/topic, {} min + {} min warm-up",
        workload.name,
        cli.bootstrap,
        cli.broker_name,
        workload.topics,
        workload.partitions_per_topic,
        workload.message_size,
        if workload.producer_rate > 0.0 { format!("{} msg/s", workload.producer_rate) } else { "max".to_string() },
        workload.producers_per_topic,
        workload.subscriptions_per_topic,
        workload.consumer_per_subscription,
        workload.test_duration_minutes,
        workload.warmup_duration_minutes
    );

    let epoch = Instant::now();
    let stop_producers = Arc::new(AtomicBool::new(false));
    let stop_consumers = Arc::new(AtomicBool::new(false));
    let mut recorders: Vec<Arc<Recorder>> = Vec::new();
    let positions: driver::Positions = Default::default();
    let assigned = Arc::new(AtomicU64::new(0));
    let mut consumers = Vec::new();
    let consumer_count = workload.topics * workload.subscriptions_per_topic * workload.consumer_per_subscription;
    let start_consumers = |recorders: &mut Vec<Arc<Recorder>>,
                           consumers: &mut Vec<std::thread::JoinHandle<anyhow::Result<()>>>| {
        for topic in &topics {
            for subscription in 0..workload.subscriptions_per_topic {
                for index in 0..workload.consumer_per_subscription {
                    let recorder = Arc::new(Recorder::default());
                    recorders.push(recorder.clone());
                    // Lag is tracked for the first subscription.
                    let positions = if subscription == 0 { positions.clone() } else { Default::default() };
                    let (stop, assigned) = (stop_consumers.clone(), assigned.clone());
                    if cli.consumer_driver == "native" {
                        let plan = native_consumer::NativeConsumerPlan {
                            bootstrap: cli.bootstrap.clone(),
                            topic: topic.clone(),
                            index,
                            count: workload.consumer_per_subscription,
                        };
                        consumers.push(std::thread::spawn(move || {
                            native_consumer::run_consumer(plan, recorder, positions, stop, assigned)
                        }));
                    } else {
                        let plan = driver::ConsumerPlan {
                            bootstrap: cli.bootstrap.clone(),
                            topic: topic.clone(),
                            group: format!("{}-{run_id}-sub-{subscription}", cli.topic_prefix),
                        };
                        consumers.push(std::thread::spawn(move || {
                            driver::run_consumer(plan, recorder, positions, stop, assigned)
                        }));
                    }
                }
            }
        }
    };
    let backlog_bytes = (workload.consumer_backlog_size_gb * 1024.0 * 1024.0 * 1024.0) as u64;
    if backlog_bytes == 0 && consumer_count > 0 {
        start_consumers(&mut recorders, &mut consumers);
        let deadline = Instant::now() + Duration::from_secs(ASSIGNMENT_WAIT_SECONDS);
        while (assigned.load(Ordering::Relaxed) as usize)
            < consumer_count
                .min(workload.topics * workload.partitions_per_topic as usize * workload.subscriptions_per_topic)
        {
            if Instant::now() > deadline {
                anyhow::bail!("consumers did not get their partitions within {ASSIGNMENT_WAIT_SECONDS} s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let producer_count = workload.topics * workload.producers_per_topic;
    let per_producer_rate = workload.producer_rate / producer_count as f64;
    let mut producers = Vec::new();
    for (topic_index, topic) in topics.iter().enumerate() {
        for index in 0..workload.producers_per_topic {
            let recorder = Arc::new(Recorder::default());
            recorders.push(recorder.clone());
            let plan = driver::ProducerPlan {
                bootstrap: cli.bootstrap.clone(),
                topic: topic.clone(),
                workload: workload.clone(),
                rate: per_producer_rate,
                seed: (topic_index * 1000 + index) as u64 + 1,
                messages_max: cli.max_messages / producer_count as u64,
            };
            let stop = stop_producers.clone();
            let native = cli.driver == "native";
            producers.push(std::thread::spawn(move || {
                if native {
                    native::run_producer(plan, recorder, stop, epoch)
                } else {
                    driver::run_producer(plan, recorder, stop, epoch)
                }
            }));
        }
    }

    let probe = driver::LagProbe::new(&cli.bootstrap, &topics, workload.partitions_per_topic)?;
    let mut result = TestResult {
        workload: workload.name.clone(),
        driver: cli.driver.clone(),
        consumer_driver: cli.consumer_driver.clone(),
        message_size: workload.message_size,
        topics: workload.topics,
        partitions: workload.partitions_per_topic,
        producers_per_topic: workload.producers_per_topic,
        consumers_per_topic: workload.subscriptions_per_topic * workload.consumer_per_subscription,
        metadata: metadata(cli, &workload, &brokers),
        ..TestResult::default()
    };
    let warmup = Duration::from_secs_f64(workload.warmup_duration_minutes * 60.0);
    let run_for = warmup + Duration::from_secs_f64(workload.test_duration_minutes * 60.0);
    let started = Instant::now();
    let produce_cpu = CpuMark::now(&cli.broker_pids);
    let mut period = Window::default();
    let mut period_start = Instant::now();
    let mut total = Window::default();
    let mut everything = Window::default();
    let mut consumers_started = !consumers.is_empty() || consumer_count == 0;
    let mut measuring_since: Option<Instant> = if warmup.is_zero() { Some(started) } else { None };
    let subscriptions = workload.subscriptions_per_topic as i64;
    let mut last_second = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let window = collect(&recorders);
        let second = last_second.elapsed().as_secs_f64().max(1e-3);
        last_second = Instant::now();
        result.publish_rate_per_second.push(window.published as f64 / second);
        result.consume_rate_per_second.push(window.consumed as f64 / second);
        everything.add(&window);
        period.add(&window);
        let elapsed = started.elapsed();
        if measuring_since.is_none() && elapsed >= warmup {
            eprintln!("loadgen: warm-up done; measuring");
            measuring_since = Some(Instant::now());
            period = Window::default();
            period_start = Instant::now();
        } else if measuring_since.is_some() {
            total.add(&window);
        }
        if !consumers_started && everything.published_bytes >= backlog_bytes {
            if workload.producer_rate == 0.0 {
                // A catch-up read: the backlog is written at max rate; producing on would keep
                // the consumers from ever catching up. Stop, then measure the read.
                eprintln!("loadgen: backlog of {} bytes written; stopping producers", everything.published_bytes);
                break;
            }
            eprintln!("loadgen: backlog of {} bytes written; starting consumers", everything.published_bytes);
            start_consumers(&mut recorders, &mut consumers);
            consumers_started = true;
        }
        let backlog = subscriptions * everything.published as i64 - everything.consumed as i64;
        let lag = probe.sample(&positions);
        result.consumer_lag.push(LagSample {
            elapsed_seconds: elapsed.as_secs_f64(),
            total: lag.values().sum(),
            per_partition: lag,
        });
        if period_start.elapsed() >= Duration::from_secs(PROGRESS_SECONDS) {
            let seconds = period_start.elapsed().as_secs_f64();
            eprintln!("{}", progress_line(&period, seconds, backlog));
            if measuring_since.is_some() {
                result.push_period(&period, seconds, backlog);
            }
            period = Window::default();
            period_start = Instant::now();
        }
        let producers_done = producers.iter().all(|producer| producer.is_finished());
        if elapsed >= run_for || producers_done {
            break;
        }
    }
    let measured_seconds = measuring_since.map_or(0.0, |since| since.elapsed().as_secs_f64());
    stop_producers.store(true, Ordering::Relaxed);
    let mut producer_failures = Vec::new();
    for producer in producers {
        match producer.join() {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => producer_failures.push(format!("{error:#}")),
            Err(_) => producer_failures.push("a producer thread panicked".to_string()),
        }
    }
    result.produce_phase_seconds = started.elapsed().as_secs_f64();
    (result.produce_phase_cpu_seconds, result.broker_produce_phase_cpu_seconds) = produce_cpu.used(&cli.broker_pids);
    let late = collect(&recorders);
    everything.add(&late);
    total.add(&late);
    let catching_up = !consumers_started && consumer_count > 0;
    if let (true, Some(command)) = (catching_up, &cli.before_consume_command) {
        let started = Instant::now();
        eprintln!("loadgen: before the consumers: sh -c {command:?}");
        let status = std::process::Command::new("sh")
            .args(["-c", command])
            .status()
            .with_context(|| format!("running {command:?}"))?;
        if !status.success() {
            anyhow::bail!("--before-consume-command {command:?} failed ({status})");
        }
        result.before_consume_seconds = started.elapsed().as_secs_f64();
    }
    let catch_up_started = Instant::now();
    let catch_up_cpu = CpuMark::now(&cli.broker_pids);
    let consumed_before_catch_up = everything.consumed;
    let mut first_record_at: Option<Instant> = None;
    let mut caught_up_at: Option<Instant> = None;
    if catching_up {
        eprintln!("loadgen: consumers start on a backlog of {} messages", everything.published);
        start_consumers(&mut recorders, &mut consumers);
    }
    // Drain: let consumers catch up with everything acknowledged.
    let wanted = subscriptions as u64 * everything.published;
    let drain_deadline = Instant::now() + Duration::from_secs(cli.drain_seconds);
    while consumer_count > 0 && everything.consumed < wanted && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(DRAIN_POLL_MS));
        let window = collect(&recorders);
        everything.add(&window);
        total.add(&window);
        if first_record_at.is_none() && everything.consumed > consumed_before_catch_up {
            first_record_at = Some(Instant::now());
        }
    }
    if everything.consumed >= wanted {
        caught_up_at = Some(Instant::now());
    }
    if catching_up {
        let seconds = catch_up_started.elapsed().as_secs_f64();
        let consumed = everything.consumed - consumed_before_catch_up;
        let mib = |seconds: f64| consumed as f64 * workload.message_size as f64 / seconds.max(1e-3) / 1_048_576.0;
        result.catch_up_seconds = seconds;
        (result.catch_up_cpu_seconds, result.broker_catch_up_cpu_seconds) = catch_up_cpu.used(&cli.broker_pids);
        result.catch_up_consume_rate = consumed as f64 / seconds.max(1e-3);
        result.catch_up_consume_mb_per_sec = mib(seconds);
        eprintln!(
            "----- Catch-up read: {consumed} messages in {seconds:.1} s ({:.0} msg/s, {:.1} MB/s), consumer join included",
            result.catch_up_consume_rate, result.catch_up_consume_mb_per_sec
        );
        // The read alone, only when it finished: a drain cut short is no rate.
        if let (Some(first), Some(last)) = (first_record_at, caught_up_at) {
            let read_seconds = last.duration_since(first).as_secs_f64();
            result.read_back_seconds = read_seconds;
            result.read_back_join_seconds = first.duration_since(catch_up_started).as_secs_f64();
            result.read_back_consume_mb_per_sec = mib(read_seconds);
            eprintln!(
                "----- Read-back: {:.1} MB/s over {read_seconds:.2} s from the first record ({:.1} s to join first)",
                result.read_back_consume_mb_per_sec, result.read_back_join_seconds
            );
        } else {
            eprintln!("loadgen: the consumers did not read the whole backlog within --drain-seconds");
        }
    }
    stop_consumers.store(true, Ordering::Relaxed);
    for consumer in consumers {
        if let Ok(Err(error)) = consumer.join() {
            eprintln!("loadgen: consumer: {error:#}");
        }
    }
    let last = collect(&recorders);
    everything.add(&last);
    total.add(&last);

    result.set_aggregates(&total, measured_seconds);
    result.run_published = everything.published;
    result.run_consumed = everything.consumed;
    result.metadata.insert("brokerEndOffsetsSum".into(), probe.end_offsets().to_string());
    let publish = Percentiles::of(&total.publish_latency, 1000.0);
    let delay = Percentiles::of(&total.publish_delay, 1.0);
    let end_to_end = Percentiles::of(&total.end_to_end, 1000.0);
    eprintln!(
        "----- Aggregated Pub Latency (ms) avg: {:.1} - 50%: {:.1} - 95%: {:.1} - 99%: {:.1} - 99.9%: {:.1} - 99.99%: {:.1} - Max: {:.1} | \
         Pub Delay (us) avg: {:.1} - 50%: {:.1} - 95%: {:.1} - 99%: {:.1} - 99.9%: {:.1} - 99.99%: {:.1} - Max: {:.1}",
        publish.avg, publish.p50, publish.p95, publish.p99, publish.p999, publish.p9999, publish.max,
        delay.avg, delay.p50, delay.p95, delay.p99, delay.p999, delay.p9999, delay.max
    );
    eprintln!(
        "----- Aggregated E2E Latency (ms) avg: {:.1} - 50%: {:.1} - 95%: {:.1} - 99%: {:.1} - 99.9%: {:.1} - 99.99%: {:.1} - Max: {:.1}",
        end_to_end.avg, end_to_end.p50, end_to_end.p95, end_to_end.p99, end_to_end.p999, end_to_end.p9999, end_to_end.max
    );
    eprintln!(
        "----- Totals: published {} ({:.1} msg/s, {:.1} MB/s), consumed {} ({:.1} msg/s), publish errors {}, over {:.1} s measured",
        result.total_published,
        result.aggregated_publish_rate,
        result.aggregated_publish_mb_per_sec,
        result.total_consumed,
        result.aggregated_consume_rate,
        result.total_publish_errors,
        measured_seconds
    );
    let json = serde_json::to_string_pretty(&result).context("encoding the result")?;
    std::fs::write(&cli.output, json).with_context(|| format!("writing {}", cli.output.display()))?;
    eprintln!("loadgen: result written to {}", cli.output.display());
    if !producer_failures.is_empty() {
        anyhow::bail!("producers failed: {}", producer_failures.join("; "));
    }
    Ok(())
}

/// CPU seconds used so far by this process (all threads) and by each broker process of a
/// `--broker-pid` list (`None` where its /proc entry cannot be read: not running, or gone).
struct CpuMark {
    client_seconds: Option<f64>,
    broker_seconds: Vec<Option<f64>>,
}

impl CpuMark {
    fn now(broker_pids: &[u32]) -> CpuMark {
        CpuMark {
            client_seconds: cpu_seconds_of("self"),
            broker_seconds: broker_pids.iter().map(|pid| cpu_seconds_of(&pid.to_string())).collect(),
        }
    }

    /// CPU seconds the client and the brokers (together) used since this mark. Only the
    /// processes read both times count: a broker that stopped or restarted in between is left
    /// out, and nothing is ever negative.
    fn used(&self, broker_pids: &[u32]) -> (f64, f64) {
        let now = CpuMark::now(broker_pids);
        let since = |before: &Option<f64>, after: &Option<f64>| Some((after.as_ref()? - before.as_ref()?).max(0.0));
        let client = since(&self.client_seconds, &now.client_seconds).unwrap_or(0.0);
        let brokers = self
            .broker_seconds
            .iter()
            .zip(&now.broker_seconds)
            .filter_map(|(before, after)| since(before, after))
            .sum();
        (client, brokers)
    }
}

/// utime + stime of `/proc/<process>/stat`, at USER_HZ = 100.
fn cpu_seconds_of(process: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    // Fields after the command name's closing parenthesis start at field 3 (state).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some((ticks(14)? + ticks(15)?) as f64 / 100.0)
}
