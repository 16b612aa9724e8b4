//! The fairing on PostgreSQL over TLS: a throwaway cluster that refuses plain
//! connections (`TlsPostgres`), with `sslmode=require` and `verify-full`.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::serde::json::json;
use session_fairing::Sessions;
use shared_model::tls_cluster::{server_sees_tls, TlsPostgres};
use shared_model::ManualClock;

mod common;

use common::{app, start, Harness};

/// The app of the behaviour suites, its sessions stored at `url`.
async fn harness(url: &str) -> Result<Harness, String> {
    let clock = ManualClock::new(start());
    let rocket = app(url, json!({})).attach(Sessions::fairing().with_clock(clock.clone()));
    match Client::untracked(rocket).await {
        Ok(client) => Ok(Harness { client, clock }),
        Err(error) => Err(error.to_string()),
    }
}

#[test]
fn sessions_are_written_and_read_back_over_tls() {
    let cluster = TlsPostgres::start();
    let verify_full = |ca: &std::path::Path| {
        format!(
            "{}&sslrootcert={}",
            cluster.url("verify-full"),
            ca.display()
        )
    };
    rocket::execute(async {
        for url in [cluster.url("require"), verify_full(cluster.ca_file())] {
            let h = harness(&url)
                .await
                .unwrap_or_else(|e| panic!("launch on {url}: {e}\n{}", cluster.server_log()));
            let written = h.put("/set/cart", None, json!(["apple"])).await;
            assert_eq!(written.status, Status::NoContent, "{url}: {}", written.body);
            let token = written.new_id().expect("a session cookie");

            let read = h.get("/get/cart", Some(&token)).await;
            assert_eq!(read.status, Status::Ok, "{url}: {}", read.body);
            assert_eq!(read.json(), json!(["apple"]));
            assert!(
                server_sees_tls(h.manager().database()),
                "{url}: the pool's connection is not encrypted"
            );
        }

        // A certificate the app's CA did not sign aborts the launch.
        assert!(
            harness(&verify_full(cluster.untrusted_ca_file()))
                .await
                .is_err(),
            "launched although the server's certificate is not signed by the given CA"
        );
    });
}
