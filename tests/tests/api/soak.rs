//! The short soak under faults (`edge_tests::soak`; `make soak` runs the long one): four
//! sessions call `echo` through the gateway before, during and after a restart through
//! the API, killed MCP server processes, a machine stopped behind the Worker's back and
//! the Machines API answering 503. No call may go unanswered, every session is carried
//! over each fault (re-initialized behind the client's back, never a 404), and once the
//! faults end every call is answered with its echo.

use std::time::Duration;

use edge_tests::soak::{round, Options, World, FAULTS};

#[tokio::test]
async fn sessions_keep_their_calls_answered_through_restarts_kills_stops_and_api_outages() {
    let w = World::start().await;
    let report = round(
        &w,
        Options {
            sessions: 4,
            before: Duration::from_secs(4),
            // Six seconds between faults: the sessions' servers restarted by one fault have
            // answered before the next kills them (a kill of servers still starting looks
            // like a crash loop to the runner, whose back-off could reach the last phase).
            during: Duration::from_secs(24),
            after: Duration::from_secs(6),
        },
    )
    .await;
    report.print();
    assert_eq!(
        report.lost_calls(),
        0,
        "calls got no answer: {:?}",
        report.lost
    );
    assert_eq!(report.faults.len(), FAULTS.len());
    for (what, reinitialized) in &report.faults {
        assert_eq!(*reinitialized, 0, "sessions lost to: {what}");
    }
    let api_down = &report.faults[3].0;
    assert!(api_down.contains("503"), "{api_down}");
    let after = &report.phases[2];
    assert!(
        after.ok > 0 && after.failed == 0,
        "{after:?} {:?}",
        report.failed
    );
    assert!(report.phases[0].ok > 0 && report.phases[0].failed == 0);
    assert_eq!(report.alive_at_end, 4);
    let (service_kib, runner_kib) = w.memory_kib();
    assert!(service_kib > 0 && runner_kib > 0);
}
