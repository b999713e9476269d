//! The group committer: one task per shard that makes appended data durable and acknowledges it.
//!
//! Owns: the loop that starts engine group commits for what was appended (woken by a trigger on
//! every append) and collects them when the engine ring's eventfd says they landed, so requests
//! keep being served while the disk works. What a landed commit means (which produces are
//! acknowledged, which fetches wake up) is the shard state's business ([`ShardState::pump`]).
//! A Produce does not wait for this task to start its commits: it starts them in the turn that
//! appended ([`ShardState::start_commits`]); this task still collects them.
//!
//! Must not know: any Kafka API.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;

use crate::limits::COMMITTER_POLL_RETRY_MS;
use crate::runtime::state::ShardState;

/// Runs until every trigger sender is dropped (shard shutdown drops the task first).
pub async fn run(state: Rc<RefCell<ShardState>>, mut triggers: mpsc::UnboundedReceiver<()>) -> anyhow::Result<()> {
    // The engine ring signals an eventfd on every completion; this loop polls a duplicate of it
    // on the runtime's own ring.
    let completions = match state.borrow().completion_fd() {
        Some(fd) => Some(compio::runtime::fd::PollFd::new(fd.try_clone_to_owned()?)?),
        None => None,
    };
    loop {
        let in_flight = {
            let mut state = state.borrow_mut();
            state.pump();
            state.commits_in_flight() > 0
        };
        let triggered = match (&completions, in_flight) {
            (Some(completions), true) => {
                let trigger = std::pin::pin!(triggers.next());
                let landed = std::pin::pin!(completions.read_ready());
                match futures_util::future::select(trigger, landed).await {
                    futures_util::future::Either::Left((trigger, _)) => trigger.is_some(),
                    futures_util::future::Either::Right((result, _)) => {
                        if let Err(error) = result {
                            tracing::error!(%error, "polling the engine's completions failed");
                            compio::time::sleep(Duration::from_millis(COMMITTER_POLL_RETRY_MS)).await;
                        }
                        true
                    }
                }
            }
            _ => triggers.next().await.is_some(),
        };
        if !triggered {
            return Ok(());
        }
        while triggers.try_recv().is_ok() {}
    }
}
