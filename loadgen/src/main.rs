//! `loadgen`, Skua's OpenMessaging-style load generator.
//!
//! Not implemented yet. Until it is, this binary says so and exits with status 2.

fn main() {
    eprintln!("loadgen: not implemented yet. See README.md, section Status.");
    std::process::exit(2);
}
