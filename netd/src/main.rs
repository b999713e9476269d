//! `netd`, Skua's broker daemon.
//!
//! Not implemented yet: the Kafka wire protocol, shards and fetch land with the broker issue.
//! Until then this binary says so and exits with status 2, so nothing mistakes it for a broker.

fn main() {
    eprintln!("netd: the Skua broker is not implemented yet; only the storage engine (skua-engine) exists. See README.md, section Status.");
    std::process::exit(2);
}
